"""After a daemon restart (kill -9 included) a running agent's token still works on a re-created socket."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from kilod.errors import Invalid, NotFound
from kilod.events import EventLog
from kilod.gateway import Gateway
from kilod.store import Store
from tests.gateway.conftest import Rig
from tests.gateway.test_scripted import REQUESTS


async def test_a_token_survives_a_restart_and_the_stale_socket_is_replaced(rig: Rig) -> None:
    attempt_id = rig.running_attempt()
    token = rig.gateway.issue(attempt_id, "claude-code")
    path = rig.gateway.socket_path(attempt_id)
    path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))   # what a killed daemon leaves: a socket file nobody listens on
    stale.close()

    store = Store(rig.data_dir / "kilod.db")   # the restarted daemon: its own store and gateway
    restarted = Gateway(store, EventLog(store), rig.models, rig.data_dir, timeout=30.0)
    try:
        assert await restarted.listen(attempt_id) == path
        session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path)), base_url="http://gw")
        async with session:
            url, body = REQUESTS["anthropic"]
            async with session.post(url, json=body, headers={"x-api-key": token}) as response:
                assert response.status == 200
        await restarted.settled()
        assert store.get_attempt(attempt_id).steps == 1
    finally:
        await restarted.aclose()
        store.close()


async def test_listen_refuses_unknown_attempts_and_bad_ids(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await rig.gateway.listen("nope-1")
    with pytest.raises(Invalid):
        await rig.gateway.listen("../escape")
    with pytest.raises(NotFound):
        rig.gateway.issue("nope-1", "codex")
