"""One card on a real repository, through a real daemon, into a real container, to Review."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.kilod_testing import DaemonProcess, git


def test_card_reaches_review_with_the_edit_only_in_its_worktree(daemon: DaemonProcess, repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {
        "prompt": "Say hello in a new file", "repo": str(repo), "models": ["scripted/hello"],
    })
    assert card["column"] == "todo"
    attempt_id = card["attempts"][0]["id"]
    attempt = daemon.wait_state(attempt_id, "review")

    worktree = Path(attempt["worktree"])
    assert (worktree / "HELLO.md").read_text().startswith("# Hello from kilod")
    assert not (repo / "HELLO.md").exists()
    assert git(repo, "status", "--porcelain") == ""
    branch_head = git(repo, "rev-parse", "--verify", f"refs/heads/{attempt['branch']}").strip()
    assert attempt["branch"] == f"kilod/{attempt_id}"
    assert branch_head == card["base_commit"]  # nothing is committed before review
    assert attempt["summary"] == "Added HELLO.md."

    events = daemon.events(attempt_id)
    states = [e["payload"]["to"] for e in events if e["kind"] == "state"]
    assert states == ["queued", "starting", "running", "review"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    tools = [e["payload"]["name"] for e in events if e["kind"] == "tool_call"]
    assert tools == ["list_files", "write_file", "shell", "finish"]
    status_output = next(e["payload"]["output"] for e in events
                         if e["kind"] == "tool_result" and e["payload"]["name"] == "shell")
    assert "?? HELLO.md" in status_output  # git works inside the sandbox

    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600  # only the daemon's user reaches the API

    board = daemon.request("GET", "/v1/board")
    columns = {c["id"]: [k["id"] for k in c["cards"]] for c in board["columns"]}
    assert columns == {"todo": [], "doing": [], "review": [card["id"]], "done": [], "closed": []}
    assert attempt["steps"] == 4 and attempt["tool_calls"] == 4
    assert attempt["tokens_in"] > 0 and attempt["tokens_out"] > 0
    assert attempt["cost_usd"] is None  # a scripted model has no price: no made-up number


def test_attempt_events_stream_as_sse_and_resume_from_last_event_id(daemon: DaemonProcess, repo: Path) -> None:
    card = daemon.request("POST", "/v1/cards", {"prompt": "hi", "repo": str(repo), "models": ["scripted/hello"]})
    attempt_id = card["attempts"][0]["id"]
    daemon.wait_state(attempt_id, "review")
    all_events = daemon.events(attempt_id)

    from tests.kilod_testing import UnixHTTPConnection

    connection = UnixHTTPConnection(daemon.socket, timeout=10)
    connection.request("GET", f"/v1/attempts/{attempt_id}/events",
                       headers={"Accept": "text/event-stream", "Last-Event-ID": "3"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    ids: list[int] = []
    while len(ids) < len(all_events) - 3:
        line = response.fp.readline().decode()
        if line.startswith("id: "):
            ids.append(int(line[4:]))
    connection.close()
    assert ids == [e["seq"] for e in all_events[3:]]
