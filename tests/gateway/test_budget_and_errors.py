"""Budgets stop an agent with an error it shows; provider failures keep their meaning."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import pytest

from kilod.domain import EventKind
from tests.gateway.conftest import Rig
from tests.gateway.fake_provider import FakeProvider
from tests.gateway.test_scripted import REQUESTS

Client = Callable[[str], Awaitable[aiohttp.ClientSession]]
MODEL = "hosted_vllm/fake-model"
DAEMON_KEY = "sk-daemon-secret-0123456789"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        monkeypatch.setenv("HOSTED_VLLM_API_BASE", server.base_url)
        monkeypatch.setenv("HOSTED_VLLM_API_KEY", DAEMON_KEY)
        yield server


async def post(client: aiohttp.ClientSession, wire: str, token: str, stream: bool = False
               ) -> tuple[int, dict[str, object]]:
    path, body = REQUESTS[wire]
    async with client.post(path, json={**body, "stream": stream}, headers={"x-api-key": token}) as response:
        return response.status, json.loads(await response.read())


@pytest.mark.parametrize("wire", list(REQUESTS))
async def test_a_spent_token_budget_refuses_the_next_call_and_tells_the_pipeline_once(
    rig: Rig, client_for: Client, wire: str
) -> None:
    attempt_id = rig.running_attempt(budget_tokens=100)   # the first scripted call spends 120
    token = rig.gateway.issue(attempt_id, "claude-code")
    client = await client_for(attempt_id)
    assert (await post(client, wire, token))[0] == 200
    for stream in (True, False):
        status, body = await post(client, wire, token, stream)
        assert status == 400
        message = json.dumps(body)
        assert ("invalid_request_error" in message) and ("budget_exceeded" in message or wire == "anthropic")
        assert "token budget of 100 reached (120 used)" in message
        assert "do not retry" in message
    assert rig.spent == [(attempt_id, "token budget of 100 reached (120 used)")]
    attempt = rig.store.get_attempt(attempt_id)
    assert attempt.stop_reason == "token budget of 100 reached (120 used)"
    assert attempt.steps == 1
    logs = [e.payload["message"] for e in rig.store.events_of(attempt_id) if e.kind == EventKind.LOG]
    assert "stopped: token budget of 100 reached (120 used)" in logs


async def test_a_spent_cost_budget_is_refused_too(rig: Rig, client_for: Client) -> None:
    attempt_id = rig.running_attempt(budget_cost_usd=0.0001)   # the first call costs $0.00014
    token = rig.gateway.issue(attempt_id, "codex")
    client = await client_for(attempt_id)
    assert (await post(client, "responses", token))[0] == 200
    status, body = await post(client, "responses", token, stream=True)
    assert status == 400
    assert body["error"]["code"] == "budget_exceeded"  # type: ignore[index]
    assert rig.spent and rig.spent[0][1].startswith("cost budget of $0.0001 reached")


@pytest.mark.parametrize(("upstream", "answered", "anthropic_type"), [
    (429, 429, "rate_limit_error"),
    (500, 502, "api_error"),
    (503, 503, "overloaded_error"),
    (529, 529, "overloaded_error"),
    (400, 400, "invalid_request_error"),
    (404, 404, "not_found_error"),
    (401, 403, "permission_error"),   # the provider refused the daemon's key: the agent's token was fine
])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_provider_errors_keep_their_meaning(
    rig: Rig, client_for: Client, provider: FakeProvider, upstream: int, answered: int, anthropic_type: str,
    stream: bool
) -> None:
    attempt_id = rig.running_attempt(model=MODEL)
    token = rig.gateway.issue(attempt_id, "claude-code")
    client = await client_for(attempt_id)
    provider.fail_next(upstream, f"provider says no (status {upstream}); your key {DAEMON_KEY} is fine")
    status, body = await post(client, "anthropic", token, stream)
    assert status == answered, body
    error = body["error"]
    assert error["type"] == anthropic_type  # type: ignore[index]
    assert "provider says no" in error["message"]  # type: ignore[index]
    assert DAEMON_KEY not in json.dumps(body)
    assert len(provider.requests) == 1            # the agent retries, seeing the status; litellm does not
    logged = [e.payload for e in rig.store.events_of(attempt_id) if e.kind == EventKind.LOG][-1]
    assert logged["status"] == answered
    assert "provider says no" in logged["message"] and DAEMON_KEY not in logged["message"]
    assert rig.store.get_attempt(attempt_id).steps == 0
    assert rig.metric("kilod_model_calls_total", model=MODEL, outcome="error", agent="claude-code") == 1


async def test_openai_wire_formats_get_openai_error_shapes(
    rig: Rig, client_for: Client, provider: FakeProvider
) -> None:
    attempt_id = rig.running_attempt(model=MODEL)
    token = rig.gateway.issue(attempt_id, "codex")
    client = await client_for(attempt_id)
    for wire in ("chat", "responses"):
        provider.fail_next(429, "slow down")
        status, body = await post(client, wire, token, stream=True)
        assert status == 429
        assert body["error"]["code"] == "rate_limit_exceeded"  # type: ignore[index]
        assert "slow down" in body["error"]["message"]  # type: ignore[index]


async def test_bad_request_bodies_get_400_and_reach_no_provider(
    rig: Rig, client_for: Client, provider: FakeProvider
) -> None:
    attempt_id = rig.running_attempt(model=MODEL)
    token = rig.gateway.issue(attempt_id, "codex")
    client = await client_for(attempt_id)
    for raw in (b"not json", b"[1, 2]"):
        async with client.post("/v1/chat/completions", data=raw, headers={"x-api-key": token}) as response:
            assert response.status == 400
            assert "kilod gateway" in (await response.json())["error"]["message"]
    async with client.get("/v1/nothing", headers={"x-api-key": token}) as response:
        assert response.status == 404
    assert provider.requests == []
