"""Cards and attempts in the store: insert, read, update, model calls counted, a person's pause."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

from kilod.domain import Attempt, Card, Event, EventKind, State, Step, now
from kilod.errors import NotFound
from kilod.store_base import StoreBase
from kilod.store_rows import ATTEMPT_COLUMNS, attempt_of, card_of, check_updatable, set_fields

# what a move will write, decided from the attempt as the transaction reads it: (event, fields); raises to refuse
MovePlan = Callable[[Attempt], tuple[tuple[EventKind, dict[str, Any]], dict[str, Any]]]


class AttemptTables(StoreBase):
    # -- cards and attempts -------------------------------------------------

    def insert_card(self, card: Card, attempts: list[Attempt]) -> list[Event]:
        """Write a card, its attempts and each attempt's first state event, all or nothing."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO cards (id, title, prompt, repo, base_ref, base_commit, network, created_at, base_branch,"
                " settings, budget_tokens, budget_cost_usd, settings_source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (card.id, card.title, card.prompt, card.repo, card.base_ref, card.base_commit,
                 int(card.network), card.created_at, card.base_branch, json.dumps(card.settings),
                 card.budget_tokens, card.budget_cost_usd,
                 None if card.settings_source is None else json.dumps(card.settings_source)),
            )
            return self._insert_attempts(db, attempts)

    def add_attempts(self, attempts: list[Attempt]) -> list[Event]:
        """More attempts on an existing card (retry), with their first state events."""
        with self.transaction() as db:
            return self._insert_attempts(db, attempts)

    def _insert_attempts(self, db: sqlite3.Connection, attempts: list[Attempt]) -> list[Event]:
        events = []
        for a in attempts:
            self._touched.add(a.id)
            db.execute(
                f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES ({', '.join('?' * 28)})",
                (a.id, a.card_id, a.n, a.model, a.runtime, a.branch, a.worktree, a.container_id,
                 str(a.state), str(a.step), a.error, a.summary, a.tokens_in, a.tokens_out,
                 a.cost_usd, a.steps, a.tool_calls, a.created_at, a.started_at, a.finished_at,
                 a.review_tree, a.landed_commit, a.stop_reason, a.run, a.agent, a.tokens_cached,
                 a.review_seconds, json.dumps(a.summaries)),
            )
            events.append(self._append_event(
                db, a.id, EventKind.STATE, {"from": None, "to": str(a.state), "card_id": a.card_id}
            ))
        return events

    def get_card(self, card_id: str) -> Card:
        row = self._db.execute("SELECT * FROM cards WHERE id = ?", (card_id,)).fetchone()
        if row is None:
            raise NotFound(f"no card '{card_id}'")
        return card_of(row)

    def list_cards(self) -> list[Card]:
        return [card_of(r) for r in self._db.execute("SELECT * FROM cards ORDER BY created_at, id")]

    def _touch_card(self, db: sqlite3.Connection, card_id: str) -> None:
        """A change to the card itself: its attempts are what the listeners (the board) are told of."""
        self._touched.update(r[0] for r in db.execute("SELECT id FROM attempts WHERE card_id = ?", (card_id,)))

    def set_archived(self, card_id: str, archived_at: float | None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE cards SET archived_at = ? WHERE id = ?", (archived_at, card_id))
            self._touch_card(db, card_id)

    def delete_card(self, card_id: str) -> None:
        """Remove a card and everything stored about its attempts, all or nothing."""
        with self.transaction() as db:
            self._touch_card(db, card_id)
            attempts = "SELECT id FROM attempts WHERE card_id = ?"
            for table in ("checks", "comments", "conversation", "events"):
                db.execute(f"DELETE FROM {table} WHERE attempt_id IN ({attempts})", (card_id,))
            db.execute("DELETE FROM attempts WHERE card_id = ?", (card_id,))
            db.execute("DELETE FROM cards WHERE id = ?", (card_id,))

    # -- reading and updating attempts ---------------------------------------

    def get_attempt(self, attempt_id: str) -> Attempt:
        return self._attempt_in(self._db, attempt_id)

    def attempts_of(self, card_id: str) -> list[Attempt]:
        rows = self._db.execute(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE card_id = ? ORDER BY n", (card_id,)
        )
        return [attempt_of(r) for r in rows]

    def all_attempts(self) -> list[Attempt]:
        rows = self._db.execute(f"SELECT {ATTEMPT_COLUMNS} FROM attempts ORDER BY created_at, n")
        return [attempt_of(r) for r in rows]

    def attempts_in(self, *states: State) -> list[Attempt]:
        marks = ", ".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE state IN ({marks}) ORDER BY created_at, n",
            [str(s) for s in states],
        )
        return [attempt_of(r) for r in rows]

    def update_attempt(self, attempt_id: str, event: tuple[EventKind, dict[str, Any]] | None = None,
                       message: dict[str, Any] | None = None, sent_comments: list[int] | None = None,
                       **fields: Any) -> Event | None:
        """Update some fields of an attempt and, in the same transaction, log an event.

        `message` is appended to the conversation and `sent_comments` marked sent in
        that transaction too: a follow-up is all there or not there after a crash.
        """
        check_updatable(fields)
        with self.transaction() as db:
            return self._update_attempt(db, attempt_id, event, message, sent_comments, fields)

    async def update_attempt_async(self, attempt_id: str, event: tuple[EventKind, dict[str, Any]] | None = None,
                                   message: dict[str, Any] | None = None, **fields: Any) -> Event | None:
        """`update_attempt` through the writer thread's group commit."""
        check_updatable(fields)
        return await self._write(partial(self._update_attempt, attempt_id=attempt_id, event=event, message=message,
                                         sent_comments=None, fields=fields))

    async def move_attempt_async(self, attempt_id: str, plan: MovePlan) -> tuple[Attempt, Event, Attempt]:
        """Read the attempt, let `plan` check the move and say its event and fields, write them: one transaction.

        Through the writer thread's group commit, so the check sees the state the write replaces
        (no other move can come between) and the event loop does not wait for the fsync.
        Returns (before, the event, after).
        """
        def work(db: sqlite3.Connection) -> tuple[Attempt, Event, Attempt]:
            before = self._attempt_in(db, attempt_id)
            event, fields = plan(before)
            check_updatable(fields)
            written = self._update_attempt(db, attempt_id, event, None, None, fields)
            assert written is not None
            return before, written, self._attempt_in(db, attempt_id)
        return await self._write(work)

    @staticmethod
    def _attempt_in(db: sqlite3.Connection, attempt_id: str) -> Attempt:
        row = db.execute(f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
        if row is None:
            raise NotFound(f"no attempt '{attempt_id}'")
        return attempt_of(row)

    def _update_attempt(self, db: sqlite3.Connection, attempt_id: str, event: tuple[EventKind, dict[str, Any]] | None,
                        message: dict[str, Any] | None, sent_comments: list[int] | None,
                        fields: dict[str, Any]) -> Event | None:
        self._touched.add(attempt_id)
        if message is not None:
            index = db.execute("SELECT COUNT(*) FROM conversation WHERE attempt_id = ?",
                               (attempt_id,)).fetchone()[0]
            db.execute("INSERT INTO conversation (attempt_id, idx, message) VALUES (?, ?, ?)",
                       (attempt_id, index, json.dumps(message)))
        for comment_id in sent_comments or []:
            db.execute("UPDATE comments SET sent_at = ? WHERE id = ?", (now(), comment_id))
        set_fields(db, attempt_id, fields)
        if event is not None:
            return self._append_event(db, attempt_id, event[0], event[1])
        return None

    def add_model_call(self, attempt_id: str, tokens_in: int, tokens_out: int, cost_usd: float | None,
                       event: tuple[EventKind, dict[str, Any]], tokens_cached: int = 0) -> Event:
        """Count one model call made through the gateway (steps + 1, tokens, cost) and log it, atomically.

        `tokens_cached`: of `tokens_in`, those read from the provider's prompt cache (as the built-in agent counts).

        Increments happen in SQL, so concurrent calls of one attempt never lose a count.
        """
        with self.transaction() as db:
            return self._add_model_call(db, attempt_id, tokens_in, tokens_out, cost_usd, event, tokens_cached)

    async def add_model_call_async(self, attempt_id: str, tokens_in: int, tokens_out: int, cost_usd: float | None,
                                   event: tuple[EventKind, dict[str, Any]], tokens_cached: int = 0) -> Event:
        """`add_model_call` through the writer thread's group commit (the event loop never waits on an fsync)."""
        return await self._write(lambda db: self._add_model_call(db, attempt_id, tokens_in, tokens_out, cost_usd,
                                                                 event, tokens_cached))

    def _add_model_call(self, db: sqlite3.Connection, attempt_id: str, tokens_in: int, tokens_out: int,
                        cost_usd: float | None, event: tuple[EventKind, dict[str, Any]], tokens_cached: int) -> Event:
        db.execute(
            "UPDATE attempts SET steps = steps + 1, tokens_in = tokens_in + ?, tokens_out = tokens_out + ?,"
            " tokens_cached = tokens_cached + ?,"
            " cost_usd = CASE WHEN ? IS NULL THEN cost_usd ELSE COALESCE(cost_usd, 0) + ? END WHERE id = ?",
            (tokens_in, tokens_out, tokens_cached, cost_usd, cost_usd, attempt_id),
        )
        return self._append_event(db, attempt_id, event[0], {**event[1], "step": self._steps(db, attempt_id)})

    @staticmethod
    def _steps(db: sqlite3.Connection, attempt_id: str) -> int:
        return int(db.execute("SELECT steps FROM attempts WHERE id = ?", (attempt_id,)).fetchone()[0])

    # -- a person's pause ------------------------------------------------------

    def request_pause(self, attempt_id: str, payload: dict[str, Any]) -> Event | None:
        """Mark a running agent as asked to pause and log `payload`, in one transaction; None if it is not at work.

        The guard is in the UPDATE itself: a move out of the agent step committed meanwhile (which
        clears the mark) makes this a no-op instead of leaving a mark for a later run to trip on.
        """
        with self.transaction() as db:
            marked = db.execute("UPDATE attempts SET pause_requested = 1 WHERE id = ? AND state = ? AND step = ?",
                                (attempt_id, str(State.RUNNING), str(Step.AGENT))).rowcount
            if not marked:
                return None
            self._touched.add(attempt_id)
            return self._append_event(db, attempt_id, EventKind.LOG, payload)

    def pause_requested(self, attempt_id: str) -> bool:
        row = self._db.execute("SELECT pause_requested FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
        return bool(row is not None and row[0])
