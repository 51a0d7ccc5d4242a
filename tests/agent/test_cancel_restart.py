"""Through a real daemon: cancel kills the running command in the container; kill -9 never runs a call twice."""

from __future__ import annotations

import json
from pathlib import Path

import docker

from tests.kilod_testing import DaemonProcess

SLEEPER = {"steps": [{"tools": [{"name": "shell", "arguments": {"command": "sleep 300"}}]}]}
ONCE = {"steps": [
    {"tools": [{"name": "shell", "arguments": {"command": "echo ran >> runs.txt; sleep 5; echo slow-done"}}]},
    {"say": "after the restart: {{last_user}}",
     "tools": [{"name": "finish", "arguments": {"summary": "done"}}]},
]}


def scripts_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "sleeper.json").write_text(json.dumps(SLEEPER))
    (folder / "once.json").write_text(json.dumps(ONCE))
    return folder


def container_processes(attempt_id: str) -> list[str]:
    client = docker.from_env()
    try:
        (container,) = client.containers.list(filters={"label": f"kilod.attempt={attempt_id}"})
        script = 'for f in /proc/[0-9]*/cmdline; do tr "\\0\\n" "  " < "$f" 2>/dev/null; echo; done'
        return container.exec_run(["sh", "-c", script]).output.decode().splitlines()
    finally:
        client.close()


def started(daemon: DaemonProcess, attempt_id: str) -> bool:
    return any(e["kind"] == "tool_call" for e in daemon.events(attempt_id))


def test_cancel_during_a_long_command_kills_it_in_the_container(
        daemon_factory: type[DaemonProcess], repo: Path, tmp_path: Path) -> None:
    daemon = daemon_factory({"KILOD_SCRIPTS_DIR": str(scripts_dir(tmp_path))}).start()
    card = daemon.request("POST", "/v1/cards", {"prompt": "wait", "repo": str(repo), "models": ["scripted/sleeper"]})
    attempt_id = card["attempts"][0]["id"]
    daemon.wait_for(lambda: started(daemon, attempt_id) and any(
        "sleep 300" in p for p in container_processes(attempt_id)), what="sleep 300 to run")

    daemon.request("POST", f"/v1/attempts/{attempt_id}/cancel")

    assert daemon.attempt(attempt_id)["state"] == "cancelled"
    # the cancel request returns once the run has stopped: the command is gone by then
    assert not [p for p in container_processes(attempt_id) if "sleep 300" in p]


def test_kill9_during_a_tool_call_never_runs_it_twice(
        daemon_factory: type[DaemonProcess], repo: Path, tmp_path: Path) -> None:
    scripts = scripts_dir(tmp_path)
    first = daemon_factory({"KILOD_SCRIPTS_DIR": str(scripts)}).start()
    card = first.request("POST", "/v1/cards", {"prompt": "once", "repo": str(repo), "models": ["scripted/once"]})
    attempt_id = card["attempts"][0]["id"]
    worktree = Path(card["attempts"][0]["worktree"])
    first.wait_for(lambda: (worktree / "runs.txt").exists(), what="the call to start")

    first.kill9()
    second = daemon_factory({"KILOD_SCRIPTS_DIR": str(scripts)}, instance=first.instance,
                            data_dir=first.data_dir).start()
    attempt = second.wait_state(attempt_id, "review", timeout=120)

    assert (worktree / "runs.txt").read_text() == "ran\n"
    assert attempt["summary"] == "done"
    events = second.events(attempt_id)
    assert [e["payload"]["id"] for e in events if e["kind"] == "tool_call"] == ["call_0_0", "call_1_0"]
    (result,) = [e["payload"] for e in events if e["kind"] == "tool_result" and e["payload"]["id"] == "call_0_0"]
    assert result["output"].startswith("note: the kilod daemon restarted while this call was running; "
                                       "it ended with exit code 0.")
    assert result["output"].endswith("Its output:\nslow-done\n")
    assert result["ok"] is True
