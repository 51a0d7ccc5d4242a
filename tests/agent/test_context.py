"""Context management: what is sent fits the window, the stored conversation stays whole."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kilod.agent.context import HEAD, Compaction, ContextPolicy, ContextView, summary_message, turns_before
from kilod.domain import EventKind
from tests.agent.world import World, make_world


def size(view: list[dict[str, Any]]) -> int:
    return len(json.dumps(view)) // 4


async def count(view: list[dict[str, Any]]) -> int:
    return size(view)


def conversation(turns: int, output: int = 2_000) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"}]
    for n in range(turns):
        messages.append({"role": "assistant", "content": f"step {n}", "tool_calls": [
            {"id": f"c{n}", "type": "function", "function": {"name": "shell", "arguments": "{}"}}]})
        messages.append({"role": "tool", "tool_call_id": f"c{n}", "name": "shell", "content": f"{n}:" + "x" * output})
    return messages


class Summaries:
    def __init__(self) -> None:
        self.asked: list[list[dict[str, Any]]] = []

    async def __call__(self, older: list[dict[str, Any]]) -> str:
        self.asked.append(older)
        return f"summary {len(self.asked)}"


async def test_old_outputs_are_masked_first_and_the_view_grows_only_at_its_end_between_compactions() -> None:
    summaries = Summaries()
    context = ContextView(window=4_000, count=count, summarize=summaries,
                          policy=ContextPolicy(high=0.8, keep_outputs=2, keep_recent=0.4))
    messages = conversation(5)
    stored = json.dumps(messages)
    view, notes = await context.view(messages)
    assert notes == []                       # 5 outputs of 500 tokens: under 3200
    assert view == messages

    messages += conversation(3)[HEAD:]       # three more turns: over the threshold
    view, notes = await context.view(messages)
    assert len(notes) == 1 and notes[0].startswith("masked 6 old tool outputs")
    assert summaries.asked == []             # masking was enough
    outputs = [m["content"] for m in view if m["role"] == "tool"]
    assert all(o.startswith("[output of shell omitted") for o in outputs[:-2])
    assert [o[:2] for o in outputs[-2:]] == ["1:", "2:"] and len(outputs) == 8
    assert json.dumps(messages[:len(json.loads(stored))]) == stored   # the stored messages are untouched

    # one more turn: the view is the previous one plus the new messages (a stable prefix for caches)
    before = view
    messages += conversation(1)[HEAD:]
    view, notes = await context.view(messages)
    assert notes == [] and view[:len(before)] == before


async def test_when_masking_is_not_enough_older_turns_are_summarised_once() -> None:
    summaries = Summaries()
    context = ContextView(window=3_000, count=count, summarize=summaries,
                          policy=ContextPolicy(high=0.8, keep_outputs=1, keep_recent=0.3))
    messages = conversation(12, output=400)    # masked outputs still add up: 12 turns of chatter
    for m in messages:
        if m["role"] == "assistant":
            m["content"] = "thinking " * 60
    view, notes = await context.view(messages)

    assert [n.split(" ")[0] for n in notes] == ["masked", "summarised"]
    assert len(summaries.asked) == 1
    assert context.compaction is not None
    assert view[:HEAD] == messages[:HEAD]
    assert view[HEAD] == summary_message(context.compaction)
    assert view[HEAD + 1:] [0] == messages[context.compaction.upto]
    assert size(view) <= 0.8 * 3_000
    assert turns_before(view) == 12           # the scripted provider's step count survives the summary


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    chatter = "I am reading the code carefully and thinking about it at length. " * 40
    steps: list[dict[str, Any]] = [
        {"say": f"step {n}: {chatter}", "tools": [{"name": "note", "arguments": {}}]} for n in range(30)]
    steps.append({"tools": [{"name": "finish", "arguments": {"summary": "long run done"}}]})
    steps.append({"say": "follow-up seen: {{last_user}}",
                  "tools": [{"name": "finish", "arguments": {"summary": "follow-up done: {{last_user}}"}}]})
    with make_world(tmp_path, monkeypatch, {"chatty": {"context_window": 6_000, "steps": steps}},
                    model="scripted/chatty") as w:
        yield w


async def test_a_long_chatty_run_is_summarised_finishes_keeps_its_log_and_takes_a_follow_up(world: World) -> None:
    async with asyncio.timeout(180):
        result = await world.agent("scripted/chatty").run()

    assert result.summary == "long run done"
    stored = world.committed_conversation()
    assert sum(1 for m in stored if m["role"] == "assistant") == 31          # the log is whole
    assert all("I am reading the code" in m["content"] for m in stored if m["role"] == "assistant" and m["content"])
    compactions = [e.payload["compaction"] for e in world.events(EventKind.LOG) if "compaction" in e.payload]
    assert compactions, "a 6,000-token window cannot hold 30 turns of 700 tokens"
    sent = [e.payload["tokens_in"] for e in world.events(EventKind.MESSAGE)]
    assert max(sent) <= 6_000

    # after a restart (a new run) and a follow-up, the stored summary is reused, not asked for again
    world.follow_up("also update the docs")
    async with asyncio.timeout(60):
        again = await world.agent("scripted/chatty").run()
    assert again.summary == "follow-up done: also update the docs"
    assert len([e for e in world.events(EventKind.LOG) if "compaction" in e.payload]) == len(compactions)


def test_a_stored_compaction_is_read_back() -> None:
    from kilod.agent.context import compaction_from_event

    assert compaction_from_event({"compaction": {"upto": 9, "turns": 3, "summary": "s"}}) == Compaction(9, 3, "s")
    assert compaction_from_event({"compaction": {"upto": "x"}}) is None
    assert compaction_from_event({"message": "hello"}) is None


async def test_a_view_far_under_the_window_is_sent_without_asking_the_tokenizer() -> None:
    counted: list[int] = []

    async def counting(view: list[dict[str, Any]]) -> int:
        counted.append(len(view))
        return size(view)

    context = ContextView(window=100_000, count=counting, summarize=Summaries(), fixed_bytes=5_000)
    small = conversation(3, output=1_000)
    view, notes = await context.view(small)
    assert (view, notes, counted) == (small, [], [])   # ~3 KB of messages: surely under 80,000 tokens

    # bytes that could be that many tokens are counted, and only then compacted
    big = conversation(40, output=2_000)
    view, notes = await context.view(big)
    assert counted == [len(big)] and notes == [] and view == big   # counted: 20,000 tokens, it fits
    assert size(big) <= 0.8 * 30_000 < len(json.dumps(big))   # fits, but its bytes alone do not say so
    tight = ContextView(window=30_000, count=counting, summarize=Summaries())
    _, notes = await tight.view(big)
    assert counted == [len(big), len(big)] and notes == []
    # parts (an image) are always counted
    parts = [*small[:HEAD], {"role": "user", "content": [{"type": "text", "text": "look"}]}]
    counted.clear()
    await context.view(parts)
    assert counted == [len(parts)]
