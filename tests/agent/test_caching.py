"""Prompt caching: breakpoints for Anthropic, a stable prefix for all, cached tokens counted and priced."""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from kilod.agent.caching import PrefixMeter, with_cache_marks
from kilod.domain import EventKind
from tests.agent.world import make_world
from tests.fake_anthropic import FakeAnthropic, tool_use_response
from tests.fake_openai import USAGE, FakeOpenAI, tool_call_response

CLAUDE = "anthropic/claude-sonnet-4-5"


def price(model: str) -> dict[str, Any]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    info: dict[str, Any] = litellm.get_model_info(model)
    return info


def anthropic_turns(body: dict[str, Any]) -> dict[str, Any]:
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant") + 1
    usage = {"input_tokens": 50, "output_tokens": 10, "cache_read_input_tokens": 1000 * (turn - 1),
             "cache_creation_input_tokens": 200}
    if turn < 3:
        return tool_use_response(turn, "note", {"text": f"turn {turn}"}, usage)
    return tool_use_response(turn, "finish", {"summary": "cached run done"}, usage)


async def test_anthropic_requests_carry_breakpoints_and_cache_reads_are_counted_and_priced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeAnthropic(anthropic_turns) as server, make_world(tmp_path, monkeypatch, model=CLAUDE) as world:
        monkeypatch.setenv("ANTHROPIC_API_BASE", server.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-kilod-test")
        async with asyncio.timeout(120):
            result = await world.agent(CLAUDE).run()
        attempt = world.store.get_attempt(world.attempt.id)
        cached = [e.payload["tokens_cached"] for e in world.events(EventKind.MESSAGE)]

    assert result.summary == "cached run done"
    assert len(server.requests) == 3
    for request in server.requests:
        body = request["body"]
        assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        marked = [m for m in body["messages"] if any(isinstance(b, dict) and "cache_control" in b
                                                     for b in _blocks(m))]
        assert 1 <= len(marked) <= 2 and marked[-1] is body["messages"][-1]
    assert attempt.tokens_cached == 0 + 1000 + 2000
    assert attempt.tokens_in == 3 * (50 + 200) + 3000
    info = price(CLAUDE)
    expected = (3 * 50 * info["input_cost_per_token"] + 3000 * info["cache_read_input_token_cost"]
                + 3 * 200 * info["cache_creation_input_token_cost"] + 3 * 10 * info["output_cost_per_token"])
    assert attempt.cost_usd == pytest.approx(expected, rel=1e-6)
    assert attempt.cost_usd < attempt.tokens_in * info["input_cost_per_token"] + 30 * info["output_cost_per_token"]
    assert cached == [0, 1000, 2000]


def _blocks(message: dict[str, Any]) -> list[Any]:
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    inner = [c for b in blocks if isinstance(b, dict) and isinstance(b.get("content"), list) for c in b["content"]]
    return blocks + inner


async def test_openai_cached_tokens_are_counted_and_the_prefix_sent_is_stable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def reply(body: dict[str, Any]) -> dict[str, Any]:
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant") + 1
        name, args = ("note", {"text": "x"}) if turn < 4 else ("finish", {"summary": "ok"})
        response = tool_call_response(body["model"], turn, name, args)
        response["usage"] = {**USAGE, "prompt_tokens_details": {"cached_tokens": 5 * (turn - 1)}}
        return response

    with FakeOpenAI(reply=reply) as server, make_world(tmp_path, monkeypatch, model="openai/gpt-4o") as world:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-kilod-test")
        async with asyncio.timeout(120):
            await world.agent("openai/gpt-4o").run()
        attempt = world.store.get_attempt(world.attempt.id)
        shares = [e.payload["cacheable"] for e in world.events(EventKind.MESSAGE)]

    bodies = [r["body"]["messages"] for r in server.requests]
    assert len(bodies) == 4
    for earlier, later in itertools.pairwise(bodies):
        assert later[:len(earlier)] == earlier          # each request starts with the previous one, unchanged
    assert "cache_control" not in str(bodies)          # no Anthropic marks where they mean nothing
    assert attempt.tokens_cached == 0 + 5 + 10 + 15
    assert shares[0] == 0 and all(s > 0.5 for s in shares[1:])


def test_marks_are_added_to_a_copy_only_for_providers_that_need_them() -> None:
    view = [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"},
            {"role": "assistant", "content": "a"}, {"role": "user", "content": "more"}]
    assert with_cache_marks("openai/gpt-4o", view) is view
    marked = with_cache_marks("bedrock/anthropic.claude-3-5-sonnet", view)
    assert view[0] == {"role": "system", "content": "sys"}
    assert marked[0]["content"] == [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}]
    assert [isinstance(m["content"], list) for m in marked] == [True, True, False, True]

    meter = PrefixMeter()
    assert meter.cacheable_share(view) == 0.0
    assert meter.cacheable_share([*view, {"role": "assistant", "content": "b" * 40}]) == pytest.approx(
        sum(len(str(m)) for m in view) / (sum(len(str(m)) for m in view) + 40), rel=0.3)
