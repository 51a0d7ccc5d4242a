"""litellm's real HTTP client against a local OpenAI-compatible server, tools running in the sandbox."""

from __future__ import annotations

from pathlib import Path

from tests.fake_openai import USAGE, FakeOpenAI
from tests.kilod_testing import DaemonProcess


def test_tool_call_round_trip_over_http_changes_a_file_in_the_sandbox(
    daemon_factory: type[DaemonProcess], repo: Path
) -> None:
    with FakeOpenAI() as server:
        daemon = daemon_factory({
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_BASE": server.base_url,
            "OPENAI_API_KEY": "sk-kilod-test",
        }).start()
        card = daemon.request("POST", "/v1/cards", {
            "prompt": "write a file", "repo": str(repo), "models": ["openai/kilod-test-model"],
        })
        attempt = daemon.wait_state(card["attempts"][0]["id"], "review")

    assert (Path(attempt["worktree"]) / "from-http.txt").read_text() == "written through litellm's HTTP path\n"
    assert not (repo / "from-http.txt").exists()
    assert len(server.requests) == 2
    first, second = (r["body"] for r in server.requests)
    assert first["model"] == "kilod-test-model"
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-kilod-test"
    assert {t["function"]["name"] for t in first["tools"]} >= {"shell", "read_file", "write_file", "finish"}
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert first["messages"][1]["content"] == "write a file"
    # the second request carries the tool's result from inside the container
    tool_message = next(m for m in second["messages"] if m["role"] == "tool")
    assert tool_message["tool_call_id"] == "call_1"
    assert "wrote 36 bytes to from-http.txt" in tool_message["content"]
    assert attempt["summary"] == "wrote the file; the tool said: wrote 36 bytes to from-http.txt"
    assert attempt["tokens_in"] == 2 * USAGE["prompt_tokens"]
    assert attempt["tokens_out"] == 2 * USAGE["completion_tokens"]
    assert attempt["cost_usd"] is None  # not in litellm's price map: "cost unknown", never made up
