"""Tokens: a wrong, foreign, revoked or expired token gets 401 in the wire's error shape and
reaches no provider; the right one works only on its own attempt's socket, only while it is live."""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import pytest

from kilod.domain import State
from tests.gateway.conftest import Rig
from tests.gateway.fake_provider import FakeProvider
from tests.gateway.test_scripted import REQUESTS

Client = Callable[[str], Awaitable[aiohttp.ClientSession]]
MODEL = "hosted_vllm/fake-model"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with FakeProvider() as server:
        monkeypatch.setenv("HOSTED_VLLM_API_BASE", server.base_url)
        yield server


async def post(client: aiohttp.ClientSession, wire: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    path, body = REQUESTS[wire]
    async with client.post(path, json=body, headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("wire", list(REQUESTS))
async def test_missing_and_wrong_tokens_get_401_in_the_wire_shape(
    rig: Rig, client_for: Client, provider: FakeProvider, wire: str
) -> None:
    attempt_id = rig.running_attempt(model=MODEL)
    token = rig.gateway.issue(attempt_id, "codex")
    client = await client_for(attempt_id)
    for headers in ({}, {"x-api-key": token + "x"}, {"Authorization": "Bearer kgw_guessed"},
                    {"Authorization": f"Basic {token}"}):
        status, body = await post(client, wire, headers)
        assert status == 401, headers
        if wire == "anthropic":
            assert body["type"] == "error"
            assert body["error"]["type"] == "authentication_error"  # type: ignore[index]
        else:
            assert body["error"]["code"] == "invalid_api_key"  # type: ignore[index]
    assert provider.requests == []
    assert rig.store.get_attempt(attempt_id).steps == 0


async def test_a_token_works_only_on_its_own_attempts_socket(
    rig: Rig, client_for: Client, provider: FakeProvider
) -> None:
    a = rig.running_attempt(model=MODEL, card_id="aaaa0001")
    b = rig.running_attempt(model=MODEL, card_id="bbbb0002")
    token_a, token_b = rig.gateway.issue(a, "codex"), rig.gateway.issue(b, "codex")
    socket_a, socket_b = await client_for(a), await client_for(b)

    status, body = await post(socket_b, "chat", {"Authorization": f"Bearer {token_a}"})
    assert status == 401
    assert "another attempt" in body["error"]["message"]  # type: ignore[index]
    assert provider.requests == []
    assert (await post(socket_a, "chat", {"Authorization": f"Bearer {token_a}"}))[0] == 200
    assert (await post(socket_b, "chat", {"Authorization": f"Bearer {token_b}"}))[0] == 200
    assert len(provider.requests) == 2
    await rig.gateway.settled()   # counted right after the answer
    assert (rig.store.get_attempt(a).steps, rig.store.get_attempt(b).steps) == (1, 1)


async def test_revoked_reissued_and_ended_attempts_tokens_are_refused(
    rig: Rig, client_for: Client, provider: FakeProvider
) -> None:
    attempt_id = rig.running_attempt(model=MODEL)
    client = await client_for(attempt_id)
    first = rig.gateway.issue(attempt_id, "claude-code")
    second = rig.gateway.issue(attempt_id, "claude-code")   # a new token replaces the old one
    assert (await post(client, "anthropic", {"x-api-key": first}))[0] == 401
    assert (await post(client, "anthropic", {"x-api-key": second}))[0] == 200

    rig.gateway.revoke(attempt_id)
    status, body = await post(client, "anthropic", {"x-api-key": second})
    assert status == 401
    assert "revoked" in body["error"]["message"]  # type: ignore[index]

    third = rig.gateway.issue(attempt_id, "claude-code")
    rig.lifecycle.transition(attempt_id, State.REVIEW)   # the attempt came to rest: its token expires
    status, body = await post(client, "anthropic", {"x-api-key": third})
    assert status == 401
    assert "review" in body["error"]["message"]  # type: ignore[index]
    assert len(provider.requests) == 1


async def test_only_a_hash_is_stored_and_the_socket_is_private(rig: Rig, client_for: Client) -> None:
    attempt_id = rig.running_attempt()
    token = rig.gateway.issue(attempt_id, "codex")
    await client_for(attempt_id)
    path = rig.gateway.socket_path(attempt_id)
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.parent.name == attempt_id
    db = (rig.data_dir / "kilod.db").read_bytes() + (rig.data_dir / "kilod.db-wal").read_bytes()
    assert token.encode() not in db
    assert rig.store.gateway_token_owner(token) is None      # the token itself is no key

    await rig.gateway.close(attempt_id)
    assert not path.exists()
    assert not os.path.exists(path.parent)
