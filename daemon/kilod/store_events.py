"""An attempt's record in the store: its event log and the agent's conversation."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from kilod.domain import Event, EventKind
from kilod.store_base import StoreBase
from kilod.store_rows import check_updatable, event_of, set_fields


class EventLog(StoreBase):
    # -- events ------------------------------------------------------------

    def append_event(self, attempt_id: str, kind: EventKind, payload: dict[str, Any]) -> Event:
        with self.transaction() as db:
            return self._append_event(db, attempt_id, kind, payload)

    async def append_event_async(self, attempt_id: str, kind: EventKind, payload: dict[str, Any]) -> Event:
        return await self._write(lambda db: self._append_event(db, attempt_id, kind, payload))

    def events_of(self, attempt_id: str, after_seq: int = 0, limit: int = 10_000) -> list[Event]:
        rows = self._db.execute(
            "SELECT * FROM events WHERE attempt_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (attempt_id, after_seq, limit),
        )
        return [event_of(r) for r in rows]

    def events_after(self, after_id: int = 0, limit: int = 10_000) -> list[Event]:
        rows = self._db.execute("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [event_of(r) for r in rows]

    def last_seq(self, attempt_id: str) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE attempt_id = ?", (attempt_id,))
        return int(row.fetchone()[0])

    def last_event_id(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])

    # -- conversation ------------------------------------------------------

    def conversation(self, attempt_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT message FROM conversation WHERE attempt_id = ? ORDER BY idx", (attempt_id,)
        )
        return [json.loads(r["message"]) for r in rows]

    def append_messages(self, attempt_id: str, start: int, messages: list[dict[str, Any]],
                        event: tuple[EventKind, dict[str, Any]] | None = None, **attempt_fields: Any) -> Event | None:
        """Append messages at index `start` (and update counters, and log `event`) in one transaction.

        A tool's result and the event that shows it are there together or not at all.
        """
        check_updatable(attempt_fields)
        with self.transaction() as db:
            return self._append_messages(db, attempt_id, start, messages, event, attempt_fields)

    async def append_messages_async(self, attempt_id: str, start: int, messages: list[dict[str, Any]],
                                    event: tuple[EventKind, dict[str, Any]] | None = None,
                                    **attempt_fields: Any) -> Event | None:
        """`append_messages` through the writer thread's group commit."""
        check_updatable(attempt_fields)
        return await self._write(
            lambda db: self._append_messages(db, attempt_id, start, messages, event, attempt_fields))

    def _append_messages(self, db: sqlite3.Connection, attempt_id: str, start: int,
                         messages: list[dict[str, Any]], event: tuple[EventKind, dict[str, Any]] | None,
                         attempt_fields: dict[str, Any]) -> Event | None:
        self._touched.add(attempt_id)
        for offset, message in enumerate(messages):
            db.execute(
                "INSERT INTO conversation (attempt_id, idx, message) VALUES (?, ?, ?)",
                (attempt_id, start + offset, json.dumps(message)),
            )
        set_fields(db, attempt_id, attempt_fields)
        if event is not None:
            return self._append_event(db, attempt_id, event[0], event[1])
        return None
