"""Gateway fixtures: a real SQLite store, real litellm, the gateway on a real unix socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from kilod.agent.models import Models
from kilod.domain import State
from kilod.events import EventLog
from kilod.gateway import Gateway
from kilod.lifecycle import Lifecycle
from kilod.metrics import Metrics
from kilod.store import Store
from tests.daemon.records import make_attempts, make_card
from tests.kilod_testing import rmtree, short_tmpdir

GATEWAY_SCRIPTS = Path(__file__).resolve().parent / "scripts"
PRICED = "scripted/gw_priced"


class Rig:
    """The pieces a gateway test drives: store, lifecycle, metrics, gateway, and budget hook calls."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.store = Store(data_dir / "kilod.db")
        self.events = EventLog(self.store)
        self.lifecycle = Lifecycle(self.store, self.events)
        self.metrics = Metrics(self.store)
        self.models = Models(GATEWAY_SCRIPTS, 30.0, self.metrics)
        self.spent: list[tuple[str, str]] = []
        self.gateway = Gateway(self.store, self.events, self.models, data_dir, timeout=30.0,
                               model_map={"small-fast": "scripted/gw_priced"}, metrics=self.metrics,
                               on_budget_spent=lambda attempt_id, reason: self.spent.append((attempt_id, reason)))

    def running_attempt(self, model: str = PRICED, card_id: str = "c0ffee01", budget_tokens: int | None = None,
                        budget_cost_usd: float | None = None) -> str:
        card = replace(make_card(card_id), budget_tokens=budget_tokens, budget_cost_usd=budget_cost_usd)
        attempt = make_attempts(card, model=model)[0]
        self.store.insert_card(card, [attempt])
        self.lifecycle.transition(attempt.id, State.STARTING)
        self.lifecycle.transition(attempt.id, State.RUNNING)
        return attempt.id

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return value or 0.0


@pytest.fixture
def rig() -> Iterator[Rig]:
    data_dir = short_tmpdir("kgw-")
    made = Rig(data_dir)
    yield made
    made.store.close()
    rmtree(data_dir)


@pytest.fixture
async def client_for(rig: Rig) -> AsyncIterator[object]:
    """client_for(attempt_id) → an aiohttp session talking to that attempt's gateway socket."""
    sessions: list[aiohttp.ClientSession] = []

    async def make(attempt_id: str) -> aiohttp.ClientSession:
        path = await rig.gateway.listen(attempt_id)
        session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path)),
                                        base_url="http://gateway")
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await session.close()
    await rig.gateway.aclose()
