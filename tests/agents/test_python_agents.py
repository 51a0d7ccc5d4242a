"""aider and mini-swe-agent: Python agents in a venv built for the sandbox image, through the gateway's
OpenAI Chat endpoint, against a scripted model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.kilod_testing import DaemonProcess


def test_aider_edits_a_file_through_the_gateway(agent_daemon: Callable[..., DaemonProcess], small_repo: Path) -> None:
    daemon = agent_daemon("aider")
    card = daemon.request("POST", "/v1/cards", {"prompt": "create aider.txt", "repo": str(small_repo),
                                                "models": ["aider:scripted/aider_edit"]})
    attempt = card["attempts"][0]
    done = daemon.wait_state(attempt["id"], "review", timeout=300)
    events = daemon.events(attempt["id"])
    assert any(e["kind"] == "tool_call" and e["payload"]["name"] == "edit" for e in events), \
        "\n".join(f"{e['kind']}: {e['payload'].get('message') or e['payload']}" for e in events)
    assert Path(done["worktree"], "aider.txt").read_text() == "hello from aider\n"
    assert done["steps"] >= 1 and done["tokens_in"] > 0
    changed = {f["path"] for f in daemon.request("GET", f"/v1/attempts/{attempt['id']}/diffstat")["files"]}
    assert changed == {"aider.txt"}   # nothing of aider's own (history, caches) in the diff


def test_mini_swe_agent_edits_a_file_through_the_gateway(agent_daemon: Callable[..., DaemonProcess],
                                                          small_repo: Path) -> None:
    daemon = agent_daemon("mini-swe-agent")
    card = daemon.request("POST", "/v1/cards", {"prompt": "create mini.txt", "repo": str(small_repo),
                                                "agents": ["mini-swe-agent"], "models": ["scripted/mini_edit"]})
    attempt = card["attempts"][0]
    done = daemon.wait_state(attempt["id"], "review", timeout=300)
    events = daemon.events(attempt["id"])
    shown = "\n".join(f"{e['kind']}: {e['payload'].get('content') or e['payload'].get('output') or e['payload']}"
                      for e in events)
    assert any(e["kind"] == "message" and "I will write the file." in e["payload"]["content"] for e in events), shown
    assert any(e["kind"] == "tool_result" and "hello from mini" in e["payload"]["output"] for e in events), shown
    assert not any("Recommended Workflow" in str(e["payload"]) for e in events), shown   # its prompt, not echoed
    assert Path(done["worktree"], "mini.txt").read_text() == "hello from mini\n"
    assert done["steps"] >= 2 and done["tokens_in"] > 0
    changed = {f["path"] for f in daemon.request("GET", f"/v1/attempts/{attempt['id']}/diffstat")["files"]}
    assert changed == {"mini.txt"}
