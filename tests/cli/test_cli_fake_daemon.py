"""The CLI against a fake daemon: cards in every state and live event streams, without Docker.

The fake answers with the shapes the real API documents (see kilod/openapi.py); the
real daemon's side of these shapes is covered by the daemon's own tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import CliEnv, FakeDaemon, Recorded, Sse

NOW = 1_800_000_000.0


def attempt(attempt_id: str, model: str, state: str, **extra: Any) -> dict[str, Any]:
    card_id, _, n = attempt_id.partition("-")
    return {
        "id": attempt_id, "card_id": card_id, "n": int(n), "model": model, "runtime": "docker",
        "branch": f"kilod/{attempt_id}", "worktree": f"/data/worktrees/{attempt_id}",
        "container": f"kilod-{attempt_id}", "container_id": None, "state": state, "step": "agent",
        "error": None, "summary": None, "tokens_in": 1200, "tokens_out": 345, "cost_usd": None,
        "steps": 3, "tool_calls": 4, "created_at": NOW, "started_at": NOW + 1, "finished_at": None,
        "landed_commit": None, "stop_reason": None, "run": 1,
        **extra,
    }


def card(card_id: str, title: str, column: str, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": card_id, "title": title, "prompt": f"{title}, please.\nSecond line [not markup].",
        "repo": "/src/project", "base_ref": "HEAD", "base_commit": "0123456789abcdef0123",
        "network": False, "created_at": NOW, "column": column, "attempts": attempts,
        "base_branch": "main", "settings": {}, "budget": {"tokens": None, "cost_usd": None},
        "usage": {"tokens_in": sum(a["tokens_in"] for a in attempts),
                  "tokens_out": sum(a["tokens_out"] for a in attempts), "cost_usd": None, "cost_complete": False},
    }


def status(**extra: Any) -> dict[str, Any]:
    """GET /v1/status as the daemon answers it."""
    return {"version": "0.1.0", "pid": 4242, "instance": "kilod-test", "max_parallel": 4, "running": 1,
            "queued": 0, "litellm_ready": True, "last_event_id": 0, **extra}


BUSY_CARD = card("c0ffee01", "Fix the [bold]parser[/bold]", "doing", [
    attempt("c0ffee01-1", "scripted/careful", "running"),
    attempt("c0ffee01-2", "openai/gpt-4o", "failed", error="model call failed: 401", cost_usd=0.0123),
])
QUEUED_CARD = card("beef0002", "Add a farewell", "todo", [attempt("beef0002-1", "scripted/quick", "queued")])
BOARD = {"columns": [
    {"id": "todo", "title": "To Do", "cards": [QUEUED_CARD]},
    {"id": "doing", "title": "Doing", "cards": [BUSY_CARD]},
    {"id": "review", "title": "Review", "cards": []},
    {"id": "done", "title": "Done", "cards": []},
]}


def event(seq: int, kind: str, payload: dict[str, Any], attempt_id: str = "c0ffee01-1") -> dict[str, Any]:
    return {"id": 100 + seq, "attempt_id": attempt_id, "seq": seq, "time": NOW + seq, "kind": kind,
            "payload": payload}


HISTORY = [
    event(1, "state", {"from": None, "to": "queued", "card_id": "c0ffee01"}),
    event(2, "state", {"from": "queued", "to": "starting", "card_id": "c0ffee01"}),
    event(3, "state", {"from": "starting", "to": "running", "card_id": "c0ffee01"}),
]
LIVE = [
    event(4, "message", {"role": "assistant", "content": "Looking around.", "step": 1, "tokens_in": 10,
                         "tokens_out": 5, "cost_usd": None}),
    event(5, "tool_call", {"id": "t1", "name": "shell", "arguments": json.dumps({"command": "ls"})}),
    event(6, "tool_result", {"id": "t1", "name": "shell", "ok": True,
                             "output": "\n".join(f"file{i}.py" for i in range(12))}),
    event(7, "state", {"from": "running", "to": "review", "card_id": "c0ffee01"}),
]
AFTER_REST = event(8, "log", {"message": "this comes after the attempt came to rest"})


def sse_frame(item: dict[str, Any]) -> str:
    return f"id: {item['seq']}\nevent: {item['kind']}\ndata: {json.dumps(item)}\n\n"


def test_board_shows_columns_cards_and_attempts(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/board", (200, BOARD))
    result = cli.run("ctl", "board")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("To Do (1)", "Doing (1)", "Review (0)", "Done (0)", "Add a farewell", "beef0002",
                 "beef0002-1", "c0ffee01-1", "c0ffee01-2", "running", "failed", "queued"):
        assert text in out, text
    assert "Fix the [bold]parser[/bold]" in out  # the agent's words are never read as markup
    assert "\x1b[" not in out


def test_board_stacks_the_columns_on_a_narrow_terminal(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/board", (200, BOARD))
    result = cli.run("ctl", "board", extra_env={"COLUMNS": "60"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.index("To Do (1)") < lines.index("Doing (1)") < lines.index("Review (0)")
    assert all(len(line) <= 60 for line in lines)


def test_show_a_card_compares_its_attempts(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/cards/c0ffee01", (200, BUSY_CARD))
    result = cli.run("ctl", "show", "c0ffee01")
    assert result.returncode == 0, result.stderr
    for text in ("Fix the [bold]parser[/bold]", "Second line [not markup].", "/src/project",
                 "HEAD @ 0123456789ab", "c0ffee01-1", "c0ffee01-2", "openai/gpt-4o", "unknown", "$0.0123",
                 "model call failed: 401", "kilod/c0ffee01-2", "1,200 in / 345 out"):
        assert text in result.stdout, text


def test_show_an_attempt_asks_for_the_attempt(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    one = BUSY_CARD["attempts"][1]
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-2", (200, one))
    fake_daemon.on("GET", "/v1/cards/c0ffee01", (200, BUSY_CARD))
    as_json = cli.run("ctl", "show", "c0ffee01-2", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == one
    text = cli.run("ctl", "show", "c0ffee01-2")
    assert text.returncode == 0, text.stderr
    assert "c0ffee01-2" in text.stdout and "c0ffee01-1" not in text.stdout


def test_logs_follow_replays_then_streams_until_the_attempt_rests(
        cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    path = "/v1/attempts/c0ffee01-1/events"

    def events(request: Recorded) -> Any:
        if "text/event-stream" in request.headers.get("Accept", ""):
            chunks = [": keep-alive\n\n"] + [sse_frame(e) for e in [*LIVE, AFTER_REST]]
            return Sse(chunks)
        return 200, {"events": HISTORY}

    fake_daemon.on("GET", path, events)
    result = cli.run("ctl", "logs", "c0ffee01-1", "-f")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "queued → starting" in lines[1]
    assert any("tool_call" in line and 'shell  {"command": "ls"}' in line for line in lines)
    assert any(line.strip() == "file0.py" for line in lines)
    assert any("more lines" in line for line in lines)  # long tool output is cut to a few lines
    assert "file11.py" not in result.stdout
    assert "running → REVIEW" in lines[-1]
    assert "after the attempt came to rest" not in result.stdout
    stream = [r for r in fake_daemon.requests if r.headers.get("Accept") == "text/event-stream"]
    assert [r.headers.get("Last-Event-ID") for r in stream] == ["3"]  # resumed after the replay
    assert [r.path for r in fake_daemon.requests].count("/v1/meta") == 1  # the daemon's states, asked once


def test_a_daemon_older_than_the_cli_is_named_as_such(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    """Which states are resting comes from GET /v1/meta; a daemon without it gets a clear line, not a guess."""
    del fake_daemon.routes[("GET", "/v1/meta")]
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/events", (200, {"events": HISTORY}))
    result = cli.run("ctl", "logs", "c0ffee01-1", "-f")
    assert result.returncode == 1
    assert "does not answer GET /v1/meta: it is older than this CLI" in result.stderr
    assert "Traceback" not in result.stderr


def test_logs_follow_of_a_resting_attempt_only_replays(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/events", (200, {"events": [*HISTORY, *LIVE]}))
    result = cli.run("ctl", "logs", "c0ffee01-1", "-f", "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [*HISTORY, *LIVE]
    assert len(fake_daemon.calls) == 1


def test_an_earlier_rest_does_not_end_a_follow(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    """review → running (a follow-up) → review: only the last state counts."""
    history = [*HISTORY, *LIVE, event(8, "state", {"from": "review", "to": "running", "card_id": "c0ffee01"})]
    final = event(9, "state", {"from": "running", "to": "review", "card_id": "c0ffee01"})

    def events(request: Recorded) -> Any:
        if request.headers.get("Accept") == "text/event-stream":
            return Sse([sse_frame(final)])
        return 200, {"events": history}

    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/events", events)
    result = cli.run("ctl", "logs", "c0ffee01-1", "-f", "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == list(range(1, 10))


def test_logs_follow_fails_when_the_stream_ends_early(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    def events(request: Recorded) -> Any:
        if request.headers.get("Accept") == "text/event-stream":
            return Sse([sse_frame(LIVE[0])])
        return 200, {"events": HISTORY}

    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/events", events)
    result = cli.run("ctl", "logs", "c0ffee01-1", "-f", "--json")
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == len(HISTORY) + 1
    assert "came to rest" in result.stderr


def test_logs_without_follow_never_streams(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/attempts/c0ffee01-1/events", (200, {"events": HISTORY}))
    result = cli.run("ctl", "logs", "c0ffee01-1")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(HISTORY)
    assert [r.headers.get("Accept") for r in fake_daemon.calls] == ["application/json"]


def test_new_sends_the_card_and_prints_its_ids(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    created = card("c0ffee01", "T", "todo", [attempt("c0ffee01-1", "a/b", "queued"),
                                             attempt("c0ffee01-2", "c/d", "queued")])
    fake_daemon.on("POST", "/v1/cards", (201, created))
    repo = cli.root / "some" / ".." / "repo"
    result = cli.run("ctl", "new", "do it", "--repo", str(repo), "--title", "T", "--base", "main",
                     "-m", "a/b", "--model", "c/d", "--no-network")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["c0ffee01", "c0ffee01-1  a/b", "c0ffee01-2  c/d"]
    assert "created card c0ffee01" in result.stderr
    body = fake_daemon.requests[-1].body
    assert body == {"prompt": "do it", "repo": str((cli.root / "repo").resolve()), "title": "T",
                    "base": "main", "models": ["a/b", "c/d"], "network": False}


def test_new_sends_only_what_was_given(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("POST", "/v1/cards", (201, card("c0ffee01", "T", "todo", [])))
    result = cli.run("ctl", "new", "do it", "--json", cwd=cli.root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == "c0ffee01"
    assert fake_daemon.requests[-1].body == {"prompt": "do it", "repo": str(Path(cli.root).resolve())}


def test_a_daemon_error_without_a_json_body_is_still_one_line(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/status", (502, b"<html>bad gateway</html>"))
    result = cli.run("ctl", "status")
    assert result.returncode == 1
    assert result.stderr.strip() == "kilod: the daemon answered HTTP 502 Bad Gateway"


def test_an_answer_that_is_not_json_fails_cleanly(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    fake_daemon.on("GET", "/v1/board", (200, b"not json"))
    result = cli.run("ctl", "board", "--json")
    assert result.returncode == 1
    assert result.stderr.strip() == "kilod: the daemon answered GET /v1/board with something that is not JSON"
