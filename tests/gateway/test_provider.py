"""The gateway against a local OpenAI-compatible server, so litellm's real HTTP path runs.

`hosted_vllm/…` sends Chat Completions for chat and Anthropic requests and the Responses API
for Responses requests; `openai/…` sends Anthropic requests to the Responses API.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import pytest

from kilod.domain import EventKind
from tests.gateway.conftest import Rig
from tests.gateway.fake_provider import USAGE_CACHED, USAGE_IN, USAGE_OUT, FakeProvider, reply_text
from tests.gateway.test_scripted import REQUESTS, sse_events, streamed_text, text_of

Client = Callable[[str], Awaitable[aiohttp.ClientSession]]
DAEMON_KEY = "sk-daemon-secret-0123456789"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        for prefix in ("HOSTED_VLLM", "OPENAI"):
            monkeypatch.setenv(f"{prefix}_API_BASE", server.base_url)
            monkeypatch.setenv(f"{prefix}_API_KEY", DAEMON_KEY)
        monkeypatch.setenv("ANTHROPIC_API_BASE", server.base_url.removesuffix("/v1"))
        monkeypatch.setenv("ANTHROPIC_API_KEY", DAEMON_KEY)
        yield server


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("wire", "model", "upstream"), [
    ("anthropic", "hosted_vllm/fake-model", "/v1/chat/completions"),
    ("anthropic", "openai/fake-model", "/v1/chat/completions"),   # not its Responses adapter: see forward.py
    ("anthropic", "anthropic/fake-model", "/v1/messages"),
    ("chat", "hosted_vllm/fake-model", "/v1/chat/completions"),
    ("responses", "hosted_vllm/fake-model", "/v1/responses"),
])
async def test_wire_format_over_litellms_http_path(
    rig: Rig, client_for: Client, provider: FakeProvider, wire: str, model: str, upstream: str, stream: bool
) -> None:
    attempt_id = rig.running_attempt(model=model)
    token = rig.gateway.issue(attempt_id, "codex")
    client = await client_for(attempt_id)
    path, body = REQUESTS[wire]
    async with client.post(path, json={**body, "stream": stream},
                           headers={"Authorization": f"Bearer {token}"}) as response:
        raw = await response.read()
        assert response.status == 200, raw
    text = streamed_text(wire, sse_events(raw)) if stream else text_of(wire, json.loads(raw))
    assert text == reply_text("fake-model")   # the provider was asked for the attempt's model

    [request] = provider.requests
    assert request["path"] == upstream
    assert request["body"]["model"] == "fake-model"
    sent_key = request["headers"].get("x-api-key") or request["headers"]["Authorization"].removeprefix("Bearer ")
    assert sent_key == DAEMON_KEY   # the daemon's key, not the agent's
    assert token not in json.dumps(request)
    await rig.gateway.settled()   # counted right after the answer
    attempt = rig.store.get_attempt(attempt_id)
    assert (attempt.steps, attempt.tokens_in, attempt.tokens_out) == (1, USAGE_IN, USAGE_OUT)
    assert attempt.tokens_cached == USAGE_CACHED   # counted as the built-in agent's cache reads are
    assert attempt.cost_usd is None   # not in litellm's price map: unknown, never made up
    logged = [e.payload for e in rig.store.events_of(attempt_id) if e.kind == EventKind.LOG]
    assert logged[-1]["cache_read"] == USAGE_CACHED
    assert "status" not in logged[-1], logged[-1]["message"]
    assert rig.metric("kilod_model_tokens_total", model=model, direction="cache_read", agent="codex") == USAGE_CACHED
    assert rig.metric("kilod_model_unpriced_calls_total", model=model, agent="codex") == 1


async def test_chat_stream_keeps_usage_out_unless_asked(rig: Rig, client_for: Client, provider: FakeProvider) -> None:
    attempt_id = rig.running_attempt(model="hosted_vllm/fake-model")
    token = rig.gateway.issue(attempt_id, "aider")
    client = await client_for(attempt_id)
    path, body = REQUESTS["chat"]
    async with client.post(path, json={**body, "stream": True}, headers={"x-api-key": token}) as response:
        events = sse_events(await response.read())
    assert all("usage" not in e and e["choices"] for e in events)
    assert provider.requests[0]["body"]["stream_options"] == {"include_usage": True}
    await rig.gateway.settled()
    assert rig.store.get_attempt(attempt_id).tokens_in == USAGE_IN   # metered all the same


async def test_mapped_model_name_goes_to_the_configured_model(
    rig: Rig, client_for: Client, provider: FakeProvider
) -> None:
    attempt_id = rig.running_attempt(model="hosted_vllm/fake-model")
    token = rig.gateway.issue(attempt_id, "claude-code")
    client = await client_for(attempt_id)
    path, body = REQUESTS["anthropic"]
    async with client.post(path, json={**body, "model": "small-fast"}, headers={"x-api-key": token}) as response:
        answer = await response.json()
    assert text_of("anthropic", answer) == "scripted hello through the gateway"   # the mapped scripted model
    assert provider.requests == []


async def test_an_agent_cannot_redirect_the_call_or_change_its_accounting(
    rig: Rig, client_for: Client, provider: FakeProvider
) -> None:
    attempt_id = rig.running_attempt(model="hosted_vllm/fake-model")
    token = rig.gateway.issue(attempt_id, "codex")
    client = await client_for(attempt_id)
    with FakeProvider() as elsewhere:
        path, body = REQUESTS["chat"]
        hostile = {**body, "api_base": elsewhere.base_url, "base_url": elsewhere.base_url,
                   "api_key": "sk-agent-own", "extra_headers": {"x-leak": "1"}, "mock_response": "pwned",
                   "input_cost_per_token": 0, "custom_llm_provider": "openai", "fallbacks": ["openai/gpt-4o"]}
        async with client.post(path, json=hostile, headers={"x-api-key": token}) as response:
            answer = await response.json()
        assert elsewhere.requests == []
    assert text_of("chat", answer) == reply_text("fake-model")
    [request] = provider.requests
    assert "x-leak" not in request["headers"]
    assert request["headers"]["Authorization"] == f"Bearer {DAEMON_KEY}"
    assert set(request["body"]) <= {"model", "messages", "stream", "stream_options"}
