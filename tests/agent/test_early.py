"""The first model call sent while the container starts: taken only for the very request the loop sends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kilod.agent.early import EarlyCall
from kilod.agent.loop import first_request
from kilod.agent.models import AGENT, Models
from kilod.agent.tools import TOOL_SCHEMAS
from kilod.metrics import Metrics
from tests.agent.world import World, make_world

MODEL = "scripted/echo"
ECHO = {"steps": [{"say": "asked: {{last_user}}",
                   "tools": [{"name": "finish", "arguments": {"summary": "{{last_user}}"}}]}]}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with make_world(tmp_path, monkeypatch, {"echo": ECHO}, model=MODEL) as w:
        w.models = Models(tmp_path / "scripts", timeout=30, metrics=Metrics(w.store))
        yield w


def calls(world: World) -> int:
    metrics = world.models._metrics
    assert metrics is not None
    return int(metrics.model_calls.labels(MODEL, "ok", AGENT)._value.get())


async def test_the_early_reply_is_the_loops_first_reply_and_the_model_is_asked_once(world: World) -> None:
    early = EarlyCall.start(world.models, MODEL, first_request(MODEL, "tidy up", None), TOOL_SCHEMAS)

    result = await world.agent(MODEL, prompt="tidy up", early=early).run()

    assert result.summary == "tidy up"
    assert calls(world) == 1   # one model turn, answered by the early call
    assert world.committed_conversation()[2]["content"] == "asked: tidy up"


async def test_an_early_call_for_another_request_is_not_taken(world: World) -> None:
    early = EarlyCall.start(world.models, MODEL, first_request(MODEL, "something else", None), TOOL_SCHEMAS)

    result = await world.agent(MODEL, prompt="tidy up", early=early).run()

    assert result.summary == "tidy up"   # the reply to what the loop sent, not to the early request
    assert world.committed_conversation()[2]["content"] == "asked: tidy up"
    assert early.task.done()
