"""The real Codex binary in a kilod sandbox, through the gateway's Responses API, against a scripted model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker

from tests.kilod_testing import DaemonProcess

MODEL = "scripted/codex_edit"


def test_codex_edits_a_file_with_its_own_tools(agent_daemon: Callable[..., DaemonProcess], small_repo: Path) -> None:
    daemon = agent_daemon("codex")
    card = daemon.request("POST", "/v1/cards", {"prompt": "write codex.txt", "repo": str(small_repo),
                                                "models": [f"codex:{MODEL}"]})
    attempt = card["attempts"][0]
    assert (attempt["agent"], attempt["model"]) == ("codex", MODEL)
    done = daemon.wait_state(attempt["id"], "review", timeout=240)
    events = daemon.events(attempt["id"])
    results = [e["payload"] for e in events if e["kind"] == "tool_result"]
    assert any("checked-by-codex" in r["output"] for r in results), events
    diff = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")
    assert "hello from codex" in str(diff)
    assert done["steps"] >= 2 and done["tokens_in"] > 0 and done["tool_calls"] >= 1
    assert done["summary"] == "Wrote codex.txt."


def test_codex_reaches_the_gateway_when_the_card_has_a_network(agent_daemon: Callable[..., DaemonProcess],
                                                               small_repo: Path) -> None:
    daemon = agent_daemon("codex")
    card = daemon.request("POST", "/v1/cards", {"prompt": "write codex.txt", "repo": str(small_repo),
                                                "models": [f"codex:{MODEL}"], "network": True})
    attempt = card["attempts"][0]
    done = daemon.wait_state(attempt["id"], "review", timeout=240)
    assert done["summary"] == "Wrote codex.txt."   # 127.0.0.1 is still the attempt's own, with its forwarder
    client = docker.from_env()
    try:
        assert client.containers.get(done["container"]).attrs["HostConfig"]["NetworkMode"] == "bridge"
    finally:
        client.close()
