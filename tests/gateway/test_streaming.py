"""Streams pass through as they arrive; a stream the agent drops is still metered; the small routes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import pytest

from tests.gateway.conftest import PRICED, Rig
from tests.gateway.fake_provider import USAGE_IN, FakeProvider
from tests.gateway.test_scripted import REQUESTS

Client = Callable[[str], Awaitable[aiohttp.ClientSession]]
MODEL = "hosted_vllm/fake-model"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        monkeypatch.setenv("HOSTED_VLLM_API_BASE", server.base_url)
        yield server


@pytest.mark.parametrize("wire", list(REQUESTS))
async def test_the_first_event_reaches_the_agent_while_the_provider_still_holds_the_rest(
    rig: Rig, client_for: Client, provider: FakeProvider, wire: str
) -> None:
    attempt_id = rig.running_attempt(model=MODEL)
    token = rig.gateway.issue(attempt_id, "codex")
    client = await client_for(attempt_id)
    release = threading.Event()
    provider.hold = release
    path, body = REQUESTS[wire]
    try:
        async with client.post(path, json={**body, "stream": True}, headers={"x-api-key": token}) as response:
            assert response.status == 200
            first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 20)
            assert b"data:" in first
            assert not release.is_set()           # the provider has not sent the rest yet
            release.set()
            rest = await response.read()
    finally:
        release.set()
    assert rest.rstrip().endswith((b"[DONE]", b"}"))
    await rig.gateway.settled()   # counted right after the stream ends
    assert rig.store.get_attempt(attempt_id).tokens_in == USAGE_IN


async def test_a_stream_the_agent_drops_is_still_counted(
    rig: Rig, client_for: Client, provider: FakeProvider
) -> None:
    attempt_id = rig.running_attempt(model=MODEL)
    token = rig.gateway.issue(attempt_id, "aider")
    client = await client_for(attempt_id)
    release = threading.Event()
    provider.hold = release
    path, body = REQUESTS["chat"]
    try:
        async with client.post(path, json={**body, "stream": True}, headers={"x-api-key": token}) as response:
            await asyncio.wait_for(response.content.readuntil(b"\n\n"), 20)
            response.close()                      # the agent hangs up mid-stream
    finally:
        release.set()

    async def counted() -> None:
        while rig.store.get_attempt(attempt_id).steps == 0:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(counted(), 20)
    assert rig.metric("kilod_model_calls_total", model=MODEL, outcome="error", agent="aider") == 1


async def test_count_tokens_and_models_answer_for_the_pinned_model(rig: Rig, client_for: Client) -> None:
    attempt_id = rig.running_attempt()
    token = rig.gateway.issue(attempt_id, "claude-code")
    client = await client_for(attempt_id)
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "count these words " * 50}]}
    async with client.post("/v1/messages/count_tokens", json=body, headers={"x-api-key": token}) as response:
        assert response.status == 200
        counted = (await response.json())["input_tokens"]
    assert 50 < counted < 1000
    async with client.get("/v1/models", headers={"Authorization": f"Bearer {token}"}) as response:
        models = await response.json()
    assert [m["id"] for m in models["data"]] == [PRICED]
    async with client.get("/v1/models") as response:
        assert response.status == 401
    attempt = rig.store.get_attempt(attempt_id)
    assert (attempt.steps, attempt.tokens_in) == (0, 0)     # neither is a model call


async def test_concurrent_calls_of_one_attempt_all_count(rig: Rig, client_for: Client) -> None:
    attempt_id = rig.running_attempt()
    token = rig.gateway.issue(attempt_id, "claude-code")
    client = await client_for(attempt_id)
    path, body = REQUESTS["anthropic"]

    async def one(stream: bool) -> int:
        async with client.post(path, json={**body, "stream": stream}, headers={"x-api-key": token}) as response:
            await response.read()
            return response.status

    assert await asyncio.gather(*(one(i % 2 == 0) for i in range(6))) == [200] * 6
    await rig.gateway.settled()
    attempt = rig.store.get_attempt(attempt_id)
    assert (attempt.steps, attempt.tokens_in, attempt.tokens_out) == (6, 600, 120)
    assert json.dumps(attempt.cost_usd)   # priced: a number
