"""Through a real daemon and litellm's HTTP path: rate limits waited out; a dead model keeps the work for later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fake_openai import FakeOpenAI, tool_call_response
from tests.kilod_testing import DaemonProcess

MODEL = "openai/kilod-test-model"


def writer(body: dict[str, Any]) -> dict[str, Any]:
    """Writes a file, then finishes quoting the person's latest message."""
    users = [m for m in body["messages"] if m["role"] == "user"]
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant") + 1
    if not any(m["role"] == "tool" for m in body["messages"]):
        return tool_call_response(body["model"], turn, "write_file", {"path": "work.txt", "content": "kept\n"})
    return tool_call_response(body["model"], turn, "finish", {"summary": f"finished after: {users[-1]['content']}"})


def start(daemon_factory: type[DaemonProcess], server: FakeOpenAI) -> DaemonProcess:
    return daemon_factory({"OPENAI_BASE_URL": server.base_url, "OPENAI_API_BASE": server.base_url,
                           "OPENAI_API_KEY": "sk-kilod-test", "KILOD_MODEL_RETRY_PATIENCE": "5"}).start()


def test_rate_limits_are_waited_out_and_the_waits_shown(daemon_factory: type[DaemonProcess], repo: Path) -> None:
    with FakeOpenAI(failures=[(429, {"Retry-After": "1"})] * 5, reply=writer) as server:
        daemon = start(daemon_factory, server)
        card = daemon.request("POST", "/v1/cards", {"prompt": "write", "repo": str(repo), "models": [MODEL]})
        attempt = daemon.wait_state(card["attempts"][0]["id"], "review")

    assert attempt["stop_reason"] is None and attempt["summary"] == "finished after: write"
    waits = [e["payload"] for e in daemon.events(attempt["id"]) if "waiting" in e["payload"]]
    assert [(w["waiting"], w["failures"]) for w in waits] == [(1.0, n) for n in range(1, 6)]
    assert len(server.requests) == 5 + 2


def test_a_model_that_keeps_failing_leaves_the_work_in_review_and_a_follow_up_continues(
        daemon_factory: type[DaemonProcess], repo: Path) -> None:
    def writer_then_down(body: dict[str, Any]) -> dict[str, Any]:
        reply = writer(body)
        if not server.requests[:-1]:
            server.failures = [(500, {})] * 1000       # the provider goes down after its first answer
        return reply

    with FakeOpenAI(reply=writer_then_down) as server:
        daemon = start(daemon_factory, server)
        card = daemon.request("POST", "/v1/cards", {"prompt": "write", "repo": str(repo), "models": [MODEL]})
        attempt_id = card["attempts"][0]["id"]
        stopped = daemon.wait_state(attempt_id, "review")

        assert stopped["stop_reason"].startswith("model error: model call to openai/kilod-test-model failed (HTTP 500)")
        assert (Path(stopped["worktree"]) / "work.txt").read_text() == "kept\n"   # the work is there

        server.failures = []
        daemon.request("POST", f"/v1/attempts/{attempt_id}/messages", {"text": "the provider is back"})
        resumed = daemon.wait_state(attempt_id, "review")

    assert resumed["stop_reason"] is None
    assert resumed["summary"] == "finished after: the provider is back"
    last = server.requests[-1]["body"]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool", "user"]
