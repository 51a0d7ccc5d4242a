"""Beyond max_parallel, attempts wait as queued and start as slots free."""

from __future__ import annotations

from pathlib import Path

from tests.kilod_testing import DaemonProcess


def test_never_more_than_max_parallel_run_and_all_finish(daemon_factory: type[DaemonProcess], repo: Path) -> None:
    daemon = daemon_factory({"KILOD_MAX_PARALLEL": "2"}).start()
    card = daemon.request("POST", "/v1/cards", {
        "prompt": "five at once", "repo": str(repo), "models": ["scripted/steady"] * 5,
    })
    attempt_ids = [a["id"] for a in card["attempts"]]
    assert len(attempt_ids) == 5
    for attempt_id in attempt_ids:
        daemon.wait_state(attempt_id, "review", timeout=180)

    # replay the global log: an attempt occupies a slot from starting until it rests
    running: set[str] = set()
    most = 0
    for event in daemon.request("GET", "/v1/events")["events"]:
        if event["kind"] != "state":
            continue
        target = event["payload"]["to"]
        if target == "starting":
            running.add(event["attempt_id"])
        elif target in ("review", "failed", "cancelled"):
            running.discard(event["attempt_id"])
        most = max(most, len(running))
    assert most == 2
    status = daemon.request("GET", "/v1/status")
    assert status["peak_running"] == 2
    assert status["running"] == 0 and status["queued"] == 0
    for attempt_id in attempt_ids:
        worktree = Path(daemon.attempt(attempt_id)["worktree"])
        assert (worktree / "steady.txt").read_text() == "steady\n"
