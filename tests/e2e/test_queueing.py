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


def test_a_follow_up_waits_for_a_slot_like_everything_else(daemon_factory: type[DaemonProcess], repo: Path) -> None:
    daemon = daemon_factory({"KILOD_MAX_PARALLEL": "2"}).start()
    first = daemon.request("POST", "/v1/cards", {"prompt": "one", "repo": str(repo), "models": ["scripted/twice"]})
    earlier = first["attempts"][0]["id"]
    daemon.wait_state(earlier, "review")
    busy = daemon.request("POST", "/v1/cards", {"prompt": "two at once", "repo": str(repo),
                                                "models": ["scripted/steady"] * 2})
    busy_ids = [a["id"] for a in busy["attempts"]]
    daemon.wait_for(lambda: all(daemon.attempt(a)["state"] == "running" for a in busy_ids), what="both running")
    accepted = daemon.request("POST", f"/v1/attempts/{earlier}/messages", {"text": "and once more"})
    assert accepted["state"] == "running"  # taken; it runs when a slot frees
    done = daemon.wait_state(earlier, "review", timeout=180)
    assert (Path(done["worktree"]) / "second.txt").read_text() == "second\n"
    for attempt_id in busy_ids:
        daemon.wait_state(attempt_id, "review", timeout=180)

    events = daemon.request("GET", "/v1/events")["events"]
    freed = min(e["id"] for e in events if e["attempt_id"] in busy_ids and e["kind"] == "state"
                and e["payload"]["to"] == "review")
    resumed = [e for e in events if e["attempt_id"] == earlier and e["kind"] == "tool_call"
               and e["id"] > accepted_event_id(events, earlier)]
    assert resumed and resumed[0]["id"] > freed  # the follow-up's agent ran only once a slot was free
    assert daemon.request("GET", "/v1/status")["peak_running"] == 2


def accepted_event_id(events: list[dict[str, object]], attempt_id: str) -> int:
    """The global id of the follow-up's review → running transition."""
    return max(int(str(e["id"])) for e in events if e["attempt_id"] == attempt_id and e["kind"] == "state"
               and isinstance(e["payload"], dict) and e["payload"].get("from") == "review")
