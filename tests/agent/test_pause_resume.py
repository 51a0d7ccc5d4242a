"""Pause a running attempt, change its worktree through a shell in its container, resume: the agent is told."""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest

from kilod.agent.pause import compose_resume
from tests.kilod_testing import ApiError, DaemonProcess

PAUSABLE = {"steps": [
    {"tools": [{"name": "shell", "arguments": {"command": "sleep 3; echo one > one.txt"}}]},
    {"tools": [{"name": "finish", "arguments": {"summary": "resumed with: {{last_user}}"}}]},
]}


def start_pausable(daemon_factory: type[DaemonProcess], repo: Path, tmp_path: Path) -> tuple[DaemonProcess, str]:
    """A daemon whose one attempt is inside its first, 3-second shell call: the moment a pause is asked for."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "pausable.json").write_text(json.dumps(PAUSABLE))
    daemon = daemon_factory({"KILOD_SCRIPTS_DIR": str(scripts)}).start()
    card = daemon.request("POST", "/v1/cards", {"prompt": "work", "repo": str(repo), "models": ["scripted/pausable"]})
    attempt_id = card["attempts"][0]["id"]
    daemon.wait_for(lambda: any(e["kind"] == "tool_call" for e in daemon.events(attempt_id)), what="the shell call")
    return daemon, attempt_id


def test_pause_after_the_current_call_change_by_hand_and_resume_with_the_change_told(
        daemon_factory: type[DaemonProcess], repo: Path, tmp_path: Path) -> None:
    daemon, attempt_id = start_pausable(daemon_factory, repo, tmp_path)

    asked = daemon.request("POST", f"/v1/attempts/{attempt_id}/pause")
    assert asked["state"] == "running"
    paused = daemon.wait_state(attempt_id, "paused")

    worktree = Path(paused["worktree"])
    assert (worktree / "one.txt").read_text() == "one\n"          # the call in flight completed
    results = [e for e in daemon.events(attempt_id) if e["kind"] == "tool_result"]
    assert len(results) == 1 and results[0]["payload"]["ok"]

    # a person works in the container, as `kilod ctl shell` would let them
    target = daemon.request("POST", f"/v1/attempts/{attempt_id}/shell")
    client = docker.from_env()
    try:
        container = client.containers.get(target["container_id"])
        done = container.exec_run(["sh", "-c", "echo 'made by hand' > human.txt"], user=target["user"],
                                  workdir=target["workdir"])
        assert done.exit_code == 0
    finally:
        client.close()
    with pytest.raises(ApiError) as twice:
        daemon.request("POST", f"/v1/attempts/{attempt_id}/pause")
    assert twice.value.status == 409

    # a person's pause is not the disk's: a restarted daemon (its scheduler, its disk watcher) leaves it
    # paused through several reconciler passes (KILOD_RECONCILE_INTERVAL=1 in tests); only /resume ends it
    assert paused["error"] is None
    daemon.kill9()
    daemon.start()
    time.sleep(3)
    still = daemon.attempt(attempt_id)
    assert still["state"] == "paused" and still["error"] is None

    daemon.request("POST", f"/v1/attempts/{attempt_id}/resume", {"text": "I added human.txt; keep it"})
    finished = daemon.wait_state(attempt_id, "review")

    summary = finished["summary"]
    assert summary.startswith("resumed with: A person paused you")
    assert "+made by hand" in summary and "human.txt" in summary
    assert summary.endswith("Their message: I added human.txt; keep it")
    assert (worktree / "human.txt").read_text() == "made by hand\n"
    states = [e["payload"]["to"] for e in daemon.events(attempt_id) if e["kind"] == "state"]
    assert states[-3:] == ["paused", "running", "review"]


def test_a_pause_asked_for_just_before_a_kill_9_is_honoured_by_the_restarted_daemon(
        daemon_factory: type[DaemonProcess], repo: Path, tmp_path: Path) -> None:
    daemon, attempt_id = start_pausable(daemon_factory, repo, tmp_path)

    # asked while the first call (3 s) runs, then the daemon dies before the agent reaches a stopping point
    assert daemon.request("POST", f"/v1/attempts/{attempt_id}/pause")["state"] == "running"
    daemon.kill9()
    daemon.start()

    paused = daemon.wait_state(attempt_id, "paused")
    assert paused["error"] is None  # a person's pause, not the disk's: only /resume ends it
    time.sleep(2)  # the scheduler and the reconciler leave it paused; the agent went no further
    assert daemon.attempt(attempt_id)["state"] == "paused"
    events = daemon.events(attempt_id)
    assert sum(1 for e in events if e["kind"] == "tool_call") == 1
    assert not any(e["kind"] == "message" and e["payload"].get("role") == "assistant"
                   and e["payload"].get("step", 0) > 1 for e in events)  # no model call after the restart

    daemon.request("POST", f"/v1/attempts/{attempt_id}/resume", {"text": "go on"})
    finished = daemon.wait_state(attempt_id, "review")
    assert finished["summary"].endswith("Their message: go on")
    # the request was used up by that pause: the next run is not paused again
    states = [e["payload"]["to"] for e in daemon.events(attempt_id) if e["kind"] == "state"]
    assert states[-3:] == ["paused", "running", "review"]


def test_the_resume_message_says_what_changed() -> None:
    assert compose_resume(None, "") == ("A person paused you to work in the sandbox by hand; you are resumed now."
                                        "\n\nThey did not change any files.")
    long = compose_resume("go on", "+x\n" * 10_000)
    assert "characters cut" in long and long.endswith("Their message: go on")
