"""Model errors don't lose work: retries honour Retry-After, and a give-up keeps the conversation.

litellm's real HTTP client talks to a local OpenAI-compatible server that fails on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kilod.agent.loop import AgentResult, AgentRun
from kilod.agent.retry import ModelError, RetryPolicy, retry_after_seconds
from kilod.domain import EventKind
from tests.agent.world import World, make_world
from tests.fake_openai import FakeOpenAI, tool_call_response

MODEL = "openai/kilod-test-model"


def finish_reply(body: dict[str, Any]) -> dict[str, Any]:
    users = [m for m in body["messages"] if m["role"] == "user"]
    return tool_call_response(body["model"], len(users), "finish", {"summary": f"done: {users[-1]['content']}"})


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(reply=finish_reply) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_BASE", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-kilod-test")
        yield fake


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with make_world(tmp_path, monkeypatch, model=MODEL,
                    retry=RetryPolicy(patience=20.0, retries=10, first_delay=0.05, max_delay=0.2)) as w:
        yield w


async def run(agent: AgentRun) -> AgentResult:
    async with asyncio.timeout(120):  # a guard against a hang, not a measurement
        return await agent.run()


async def test_rate_limits_are_waited_out_as_the_server_asks_and_the_attempt_says_so(
        world: World, server: FakeOpenAI) -> None:
    server.failures = [(429, {"Retry-After": "1"})] * 5

    result = await run(world.agent(MODEL, prompt="fix it"))

    assert result == AgentResult("done: fix it")
    assert len(server.requests) == 6
    waits = [e.payload for e in world.events(EventKind.LOG) if "waiting" in e.payload]
    assert [w["waiting"] for w in waits] == [1.0] * 5   # Retry-After, not our own backoff
    assert [w["failures"] for w in waits] == [1, 2, 3, 4, 5]
    assert all("HTTP 429" in w["reason"] for w in waits)


async def test_a_permanent_server_error_stops_the_run_with_its_work_kept_and_a_follow_up_continues(
        world: World, server: FakeOpenAI) -> None:
    server.failures = [(500, {})] * 1000

    stopped = await run(world.agent(MODEL, prompt="fix it"))

    assert stopped.stopped_early is not None and stopped.stopped_early.startswith("model error:")
    assert "HTTP 500" in stopped.stopped_early and "gave up after" in stopped.stopped_early
    tries = len(server.requests)
    assert tries > 3   # retried with backoff until the policy's patience ran out
    assert [m["role"] for m in world.committed_conversation()] == ["system", "user"]
    (given_up,) = [e.payload for e in world.events(EventKind.LOG) if "model_error" in e.payload]
    assert given_up["retryable"] is True and given_up["upstream_status"] == 500

    server.failures = []
    world.follow_up("the server is back, carry on")
    result = await run(world.agent(MODEL, prompt="fix it"))

    assert result == AgentResult("done: the server is back, carry on")
    assert [m["role"] for m in world.committed_conversation()] == [
        "system", "user", "user", "assistant", "tool"]
    assert len(server.requests) == tries + 1


async def test_a_rejected_key_is_not_retried(world: World, server: FakeOpenAI) -> None:
    server.failures = [(401, {})]

    stopped = await run(world.agent(MODEL))

    assert len(server.requests) == 1
    assert stopped.stopped_early is not None and "HTTP 401" in stopped.stopped_early
    assert not [e for e in world.events(EventKind.LOG) if "waiting" in e.payload]


def test_retry_after_is_read_in_seconds_milliseconds_or_as_a_date() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Sun, 29 Nov 2026 15:00:30 GMT"},
                               now=1_795_964_400.0) == pytest.approx(30.0)
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_the_policy_backs_off_and_gives_up_when_its_patience_is_spent() -> None:
    policy = RetryPolicy(patience=10.0, retries=100, first_delay=1.0, max_delay=4.0, jitter=0.0)
    busy = ModelError("busy", retryable=True)
    assert [policy.delay(n, busy, 0.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.delay(1, busy, 9.5) is None
    assert policy.delay(1, ModelError("asked", retryable=True, retry_after=3.0), 0.0) == 3.0
    assert policy.delay(1, ModelError("bad request", retryable=False), 0.0) is None
