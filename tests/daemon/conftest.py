"""Fixtures for daemon unit tests: a real SQLite store in tmp_path, its event log and lifecycle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kilod.domain import Attempt
from kilod.events import EventLog
from kilod.lifecycle import Lifecycle
from kilod.store import Store
from tests.daemon.records import make_attempts, make_card


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "kilod.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store(db_path)
    yield opened
    opened.close()


@pytest.fixture
def event_log(store: Store) -> EventLog:
    return EventLog(store)


@pytest.fixture
def lifecycle(store: Store, event_log: EventLog) -> Lifecycle:
    return Lifecycle(store, event_log)


@pytest.fixture
def attempt(store: Store) -> Attempt:
    card = make_card()
    (created,) = make_attempts(card)
    store.insert_card(card, [created])
    return created
