"""The real Claude Code binary in a kilod sandbox, through the gateway, against a scripted model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.kilod_testing import DaemonProcess

MODEL = "scripted/cc_edit"


def test_claude_code_edits_a_file_with_its_own_tools(agent_daemon: Callable[..., DaemonProcess],
                                                      small_repo: Path) -> None:
    daemon = agent_daemon("claude-code")
    card = daemon.request("POST", "/v1/cards", {"prompt": "write hello.txt", "repo": str(small_repo),
                                                "agents": ["claude-code"], "models": [MODEL]})
    attempt = card["attempts"][0]
    assert attempt["agent"] == "claude-code"
    done = daemon.wait_state(attempt["id"], "review", timeout=240)
    events = daemon.events(attempt["id"])
    calls = [e["payload"]["name"] for e in events if e["kind"] == "tool_call"]
    results = [e["payload"] for e in events if e["kind"] == "tool_result"]
    assert calls[:2] == ["Write", "Bash"], events
    assert any("checked-by-bash" in r["output"] for r in results), results
    diff = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")
    assert "hello from claude code" in str(diff)
    assert done["steps"] >= 3 and done["tokens_in"] > 0 and done["tool_calls"] >= 2
    assert done["summary"] == "Wrote hello.txt."
