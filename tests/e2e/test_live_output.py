"""Setup and check commands' output reaches the API while they run (`output` events), bounded, also on a timeout.

Each live test's command waits for a file the test creates only once the command's first
line is visible through the API: the command cannot have ended before, so seeing that line
proves the output was live (no clock involved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.kilod_testing import DaemonProcess

pytestmark = pytest.mark.docker

WAIT_FOR = 'echo {first}; while [ ! -f /workspace/{flag} ]; do sleep 0.1; done; echo {last}'


def outputs(daemon: DaemonProcess, attempt_id: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in daemon.events(attempt_id) if e["kind"] == "output"]


def output_of(daemon: DaemonProcess, attempt_id: str, step: str) -> str:
    return "".join(p["text"] for p in outputs(daemon, attempt_id) if p["step"] == step)


def ends(daemon: DaemonProcess, attempt_id: str, kind: str) -> list[dict[str, Any]]:
    """End-of-command events: setup's results (log with an exit code), or checks."""
    return [e["payload"] for e in daemon.events(attempt_id)
            if e["kind"] == kind and e["payload"].get("exit_code") is not None]


def new_card(daemon: DaemonProcess, repo: Path, settings: dict[str, Any]) -> tuple[str, str]:
    card = daemon.request("POST", "/v1/cards", {"prompt": "say hello", "repo": str(repo),
                                                "models": ["scripted/hello"], "settings": settings})
    attempt_id = card["attempts"][0]["id"]
    return attempt_id, daemon.attempt(attempt_id)["worktree"]


def test_setup_output_is_visible_while_it_runs(daemon: DaemonProcess, repo: Path) -> None:
    command = WAIT_FOR.format(first="ready", flag=".go", last="finished")
    attempt_id, worktree = new_card(daemon, repo, {"setup": [command]})

    daemon.wait_for(lambda: "ready\n" in output_of(daemon, attempt_id, "setup"), what="setup's first line")
    attempt = daemon.attempt(attempt_id)
    assert (attempt["state"], attempt["step"]) == ("running", "setup")  # still waiting for .go
    assert not ends(daemon, attempt_id, "log")
    (Path(worktree) / ".go").write_text("")

    daemon.wait_state(attempt_id, "review")
    assert output_of(daemon, attempt_id, "setup") == "ready\nfinished\n"
    assert {p["command"] for p in outputs(daemon, attempt_id)} == {command}
    (end,) = ends(daemon, attempt_id, "log")
    assert (end["status"], end["output_tail"], end["output_cut"]) == ("passed", "ready\nfinished\n", False)


def test_check_output_is_visible_while_it_runs(daemon: DaemonProcess, repo: Path) -> None:
    command = WAIT_FOR.format(first="checking", flag=".go-check", last="checked")
    attempt_id, worktree = new_card(daemon, repo, {"checks": [{"name": "waiter", "run": command}]})

    daemon.wait_for(lambda: "checking\n" in output_of(daemon, attempt_id, "checks"), what="the check's first line")
    assert daemon.attempt(attempt_id)["step"] == "checks" and not ends(daemon, attempt_id, "check")
    assert {(p["name"], p["command"]) for p in outputs(daemon, attempt_id)} == {("waiter", command)}
    (Path(worktree) / ".go-check").write_text("")

    reviewed = daemon.wait_state(attempt_id, "review")
    assert reviewed["checks"]["passed"] == 1
    assert output_of(daemon, attempt_id, "checks") == "checking\nchecked\n"


@pytest.fixture
def strict_daemon(daemon_factory: type[DaemonProcess]) -> DaemonProcess:
    """A daemon with a small live-output limit and a short setup timeout."""
    return daemon_factory({"KILOD_COMMAND_OUTPUT_LIMIT": "20000", "KILOD_SETUP_TIMEOUT": "3"}).start()


def test_a_chatty_command_is_cut_at_the_limit_and_a_slow_one_killed(strict_daemon: DaemonProcess,
                                                                    repo: Path) -> None:
    daemon = strict_daemon
    chatty, _ = new_card(daemon, repo, {"setup": ["yes 'a chatty line' | head -n 100000"]})
    slow, _ = new_card(daemon, repo, {"setup": ["echo started; sleep 97; echo never"]})
    daemon.wait_state(chatty, "review")

    events = outputs(daemon, chatty)
    recorded = "".join(p["text"] for p in events)
    assert 0 < len(recorded.encode()) <= 20_000 and set(recorded.splitlines()) == {"a chatty line"}
    assert [bool(p.get("cut")) for p in events].count(True) == 1 and events[-1]["cut"]
    assert "cut" in events[-1]["message"]
    (end,) = ends(daemon, chatty, "log")
    assert end["output_cut"] and end["output_bytes"] == 100_000 * len("a chatty line\n")
    assert end["output_tail"].endswith("a chatty line\n")  # the end still shows the last lines

    failed = daemon.wait_state(slow, "failed")
    assert "setup command failed (error" in failed["error"]
    assert output_of(daemon, slow, "setup") == "started\n"
    (end,) = ends(daemon, slow, "log")
    assert end["timed_out"] and end["status"] == "error"


def test_output_seen_before_a_kill_9_is_still_there_and_setup_runs_again(daemon_factory: type[DaemonProcess],
                                                                         repo: Path) -> None:
    first = daemon_factory().start()
    command = WAIT_FOR.format(first="ready", flag=".go", last="finished")
    attempt_id, worktree = new_card(first, repo, {"setup": [command]})
    first.wait_for(lambda: "ready\n" in output_of(first, attempt_id, "setup"), what="setup's first line")
    seen = [e for e in first.events(attempt_id) if e["kind"] == "output"]

    first.kill9()
    second = daemon_factory(instance=first.instance, data_dir=first.data_dir).start()
    # durable: what was read before the kill is there as it was; the step starts again (safe to run twice)
    second.wait_for(lambda: output_of(second, attempt_id, "setup").count("ready\n") == 2, what="setup run again")
    assert [e for e in second.events(attempt_id) if e["kind"] == "output"][:len(seen)] == seen
    (Path(worktree) / ".go").write_text("")
    second.wait_state(attempt_id, "review")
    assert output_of(second, attempt_id, "setup").endswith("finished\n")
    assert [p["status"] for p in ends(second, attempt_id, "log")] == ["passed"]
