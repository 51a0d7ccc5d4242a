"""Bad tool calls are told to the model and never poison the history it is sent again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kilod.agent.conversation import REMINDER, repair_tool_calls, sendable
from kilod.domain import EventKind
from tests.agent.world import World, make_world
from tests.fake_openai import FakeOpenAI, text_response, tool_call_response

MODEL = "openai/kilod-test-model"
BROKEN = '{"command": "ls -la /workspace'   # cut off mid-string, as a streamed answer can be


def broken_call(model: str, turn: int) -> dict[str, Any]:
    response = tool_call_response(model, turn, "shell", {})
    response["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = BROKEN
    return response


class BadModel:
    """Turn by turn: broken JSON, an unknown tool, a wrong argument type, prose, then finish."""

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body["model"]
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant") + 1
        if turn == 1:
            return broken_call(model, turn)
        if turn == 2:
            return tool_call_response(model, turn, "note", {"text": "remember this"})
        if turn == 3:
            return tool_call_response(model, turn, "read_file", {"path": "greeter.py", "offset": "ten"})
        if turn == 4:
            return text_response(model, turn, "I think it is all fine now.")
        return tool_call_response(model, turn, "finish", {"summary": "nothing needed changing"})


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(reply=BadModel()) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-kilod-test")
        yield fake


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with make_world(tmp_path, monkeypatch, model=MODEL) as w:
        yield w


async def test_each_bad_call_is_explained_and_the_history_sent_stays_valid(world: World, server: FakeOpenAI) -> None:
    async with asyncio.timeout(120):
        result = await world.agent(MODEL).run()

    assert result.summary == "nothing needed changing"
    bodies = [r["body"] for r in server.requests]
    assert len(bodies) == 5
    for body in bodies:
        assert "kilod_" not in json.dumps(body)   # kilod's notes are never sent
        for message in body["messages"]:
            for call in message.get("tool_calls") or []:
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
    results = [m for m in bodies[-1]["messages"] if m["role"] == "tool"]
    assert [r["name"] for r in results] == ["shell", "note", "read_file"]
    assert results[0]["content"].startswith("error: the arguments were not valid JSON (")
    assert results[0]["content"].endswith("the call was not run. You sent: " + BROKEN)
    assert results[1]["content"].startswith("error: unknown tool 'note'; tools are: ")
    assert results[2]["content"] == ("error: bad arguments for read_file: argument 'offset' must be an integer, "
                                     "not str \"ten\"; the call was not run")
    assert bodies[4]["messages"][-1] == {"role": "user", "content": REMINDER}

    stored = world.committed_conversation()
    first_call = stored[2]["tool_calls"][0]
    assert first_call["function"]["arguments"] == "{}"
    assert "not valid JSON" in first_call["kilod_error"]
    # what the model really sent is in the attempt's log
    announced = [e.payload for e in world.events(EventKind.TOOL_CALL)]
    assert announced[0]["arguments"] == BROKEN


def test_a_repaired_history_is_accepted_by_litellms_anthropic_translation() -> None:
    """litellm parses every stored call's arguments again for anthropic/*: one broken call failed every request."""
    from litellm.litellm_core_utils.prompt_templates.factory import anthropic_messages_pt

    assistant = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "shell", "arguments": BROKEN}},
        {"id": "toolu_2", "type": "function", "function": {"name": "read_file", "arguments": '["a.py"]'}},
        {"id": "toolu_3", "type": "function", "function": {"name": "search", "arguments": '{"pattern": "x"}'}},
    ]}
    rest = [{"role": "tool", "tool_call_id": f"toolu_{n}", "content": "result"} for n in (1, 2, 3)]
    raw = [{"role": "user", "content": "go"}, assistant, *rest]
    with pytest.raises(ValueError, match="Failed to parse tool call arguments"):
        anthropic_messages_pt(raw, model="claude-sonnet-4-5", llm_provider="anthropic")  # type: ignore[arg-type]

    repaired = repair_tool_calls(assistant)
    sent = [{"role": "user", "content": "go"}, sendable(repaired), *rest]
    translated = anthropic_messages_pt(sent, model="claude-sonnet-4-5", llm_provider="anthropic")  # type: ignore[arg-type]

    uses = [block for block in translated[1]["content"] if block["type"] == "tool_use"]  # type: ignore[index]
    assert [(u["id"], u["input"]) for u in uses] == [  # type: ignore[index]
        ("toolu_1", {}), ("toolu_2", {}), ("toolu_3", {"pattern": "x"})]
    assert "not valid JSON" in repaired["tool_calls"][0]["kilod_error"]
    assert "must be a JSON object, not list" in repaired["tool_calls"][1]["kilod_error"]
    assert "kilod_error" not in repaired["tool_calls"][2]
