"""Each wire format, streamed and not, through the gateway to the scripted provider (real litellm)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from kilod.domain import EventKind
from tests.gateway.conftest import PRICED, Rig

Client = Callable[[str], Awaitable[aiohttp.ClientSession]]
SAY = "scripted hello through the gateway"
PRICE_IN, PRICE_OUT = 0.000001, 0.000002

REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "anthropic": ("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 100,
                                   "messages": [{"role": "user", "content": "hi"}]}),
    "chat": ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    "responses": ("/v1/responses", {"model": "gpt-5-codex", "input": "hi"}),
}


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for block in raw.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data:") and line[5:].strip().startswith("{"):
                events.append(json.loads(line[5:]))
    return events


def text_of(wire: str, body: dict[str, Any]) -> str:
    if wire == "anthropic":
        return "".join(b.get("text", "") for b in body["content"] if b["type"] == "text")
    if wire == "chat":
        return str(body["choices"][0]["message"]["content"])
    return "".join(c["text"] for item in body["output"] if item["type"] == "message" for c in item["content"])


def streamed_text(wire: str, events: list[dict[str, Any]]) -> str:
    if wire == "anthropic":
        return "".join(e["delta"].get("text", "") for e in events if e.get("type") == "content_block_delta")
    if wire == "chat":
        return "".join(c["delta"].get("content") or "" for e in events for c in e.get("choices", []))
    return "".join(e["delta"] for e in events if e.get("type") == "response.output_text.delta")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("wire", list(REQUESTS))
async def test_each_wire_format_reaches_the_scripted_model_and_is_metered(
    rig: Rig, client_for: Client, wire: str, stream: bool
) -> None:
    attempt_id = rig.running_attempt()
    token = rig.gateway.issue(attempt_id, "claude-code")
    client = await client_for(attempt_id)
    path, body = REQUESTS[wire]
    async with client.post(path, json={**body, "stream": stream}, headers={"x-api-key": token}) as response:
        raw = await response.read()
        assert response.status == 200, raw
        if stream:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert streamed_text(wire, sse_events(raw)) == SAY
        else:
            assert text_of(wire, json.loads(raw)) == SAY

    await rig.gateway.settled()   # counted right after the answer
    attempt = rig.store.get_attempt(attempt_id)
    assert (attempt.steps, attempt.tokens_in, attempt.tokens_out) == (1, 100, 20)
    assert attempt.cost_usd == pytest.approx(100 * PRICE_IN + 20 * PRICE_OUT)
    logged = [e for e in rig.store.events_of(attempt_id) if e.kind == EventKind.LOG]
    assert logged[-1].payload["source"] == "gateway"
    assert logged[-1].payload["model"] == PRICED      # pinned, whatever the agent named
    assert logged[-1].payload["step"] == 1
    assert rig.metric("kilod_model_calls_total", model=PRICED, outcome="ok", agent="claude-code") == 1
    assert rig.metric("kilod_model_tokens_total", model=PRICED, direction="input", agent="claude-code") == 100
    assert rig.metric("kilod_model_cost_usd_total", model=PRICED, agent="claude-code") == pytest.approx(
        attempt.cost_usd)


SECOND_TURN: dict[str, tuple[str, dict[str, Any]]] = {
    "anthropic": ("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "now write a.txt"}]}),
    "chat": ("/v1/chat/completions", {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "now write a.txt"}]}),
    "responses": ("/v1/responses", {"model": "gpt-5-codex", "input": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "now write a.txt"}]}),
}


def tool_calls_of(wire: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if wire == "anthropic":
        return [(b["name"], b["input"]) for b in body["content"] if b["type"] == "tool_use"]
    if wire == "chat":
        return [(c["function"]["name"], json.loads(c["function"]["arguments"]))
                for c in body["choices"][0]["message"]["tool_calls"]]
    return [(i["name"], json.loads(i["arguments"])) for i in body["output"] if i["type"] == "function_call"]


def streamed_tool_calls(wire: str, events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    if wire == "anthropic":
        names = [e["content_block"]["name"] for e in events
                 if e.get("type") == "content_block_start" and e["content_block"]["type"] == "tool_use"]
        args = "".join(e["delta"]["partial_json"] for e in events
                       if e.get("type") == "content_block_delta" and e["delta"]["type"] == "input_json_delta")
        return [(names[0], json.loads(args))] if names else []
    if wire == "chat":
        calls = [c for e in events for ch in e.get("choices", []) for c in ch["delta"].get("tool_calls") or []]
        name = next(c["function"]["name"] for c in calls if c["function"].get("name"))
        return [(name, json.loads("".join(c["function"].get("arguments") or "" for c in calls)))]
    done = [e["item"] for e in events if e.get("type") == "response.output_item.done"]
    return [(i["name"], json.loads(i["arguments"])) for i in done if i["type"] == "function_call"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("wire", list(SECOND_TURN))
async def test_tool_calls_reach_the_agent_in_its_wire_format(
    rig: Rig, client_for: Client, wire: str, stream: bool
) -> None:
    attempt_id = rig.running_attempt()
    token = rig.gateway.issue(attempt_id, "claude-code")
    client = await client_for(attempt_id)
    path, body = SECOND_TURN[wire]   # one assistant turn so far: the script plays its tool-calling step
    async with client.post(path, json={**body, "stream": stream}, headers={"x-api-key": token}) as response:
        raw = await response.read()
        assert response.status == 200, raw
    calls = streamed_tool_calls(wire, sse_events(raw)) if stream else tool_calls_of(wire, json.loads(raw))
    assert calls == [("write_file", {"path": "a.txt", "content": "A"})]
    await rig.gateway.settled()
    attempt = rig.store.get_attempt(attempt_id)
    assert (attempt.steps, attempt.tokens_in, attempt.tokens_out) == (1, 150, 30)


# Trimmed from what the real binaries sent (Claude Code 2.1, Codex 0.163): the fields that litellm
# must take (or drop) for a model that supports none of them, such as the scripted one.
CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-opus-5-5", "max_tokens": 32000, "stream": True,
    "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "write hello.txt",
                                                "cache_control": {"type": "ephemeral"}}]}],
    "tools": [{"name": "Write", "description": "Write a file",
               "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                                 "content": {"type": "string"}},
                                "required": ["file_path", "content"]}}],
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "metadata": {"user_id": "user_abc_account__session_123"}, "temperature": 1,
}
CODEX_BODY: dict[str, Any] = {
    "model": "gpt-5-codex", "instructions": "You are Codex.", "stream": True, "store": False,
    "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "write hello.txt"}]}],
    "tools": [{"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
               "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}],
    "tool_choice": "auto", "parallel_tool_calls": False, "reasoning": {"effort": "medium", "summary": "auto"},
    "include": ["reasoning.encrypted_content"], "prompt_cache_key": "0192-session",
}


@pytest.mark.parametrize(("path", "body"), [("/v1/messages", CLAUDE_CODE_BODY), ("/v1/responses", CODEX_BODY)],
                         ids=["claude-code", "codex"])
async def test_real_agent_request_shapes_work_on_a_model_without_their_extras(
    rig: Rig, client_for: Client, path: str, body: dict[str, Any]
) -> None:
    attempt_id = rig.running_attempt()
    token = rig.gateway.issue(attempt_id, "codex")
    client = await client_for(attempt_id)
    headers = {"Authorization": f"Bearer {token}", "anthropic-beta": "claude-code-20250219,interleaved-thinking"}
    async with client.post(path, json=body, headers=headers) as response:
        raw = await response.read()
        assert response.status == 200, raw
    wire = "anthropic" if path == "/v1/messages" else "responses"
    assert streamed_text(wire, sse_events(raw)) == SAY
    await rig.gateway.settled()
    assert rig.store.get_attempt(attempt_id).steps == 1
