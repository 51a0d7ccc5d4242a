"""The board read back: cards with their attempts, and cards by column, from memory.

The board is read far more often than it changes (every `ctl board --watch`, every
web page, every few seconds), and 20 busy attempts change it ~100 times a second.
So it is a projection: built from the store once, then kept current by the store's
commit notices (`Store.listeners`: the attempts each commit changed). The notice itself
re-reads the cards whose attempts changed, all of them in a few queries, on the thread
that committed (mostly the store's writer thread): a read of the board on the event loop
asks SQLite nothing (each query there let go of the GIL and, with 20 busy attempts, waited
up to 45 ms to get it back). Every other card's JSON is reused as it is, as a dict and as text.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from kilod.domain import COLUMN_TITLES, Attempt, Card, Column, State, card_json
from kilod.errors import NotFound
from kilod.store import Store

log = logging.getLogger(__name__)


def card_view(store: Store, card: Card, attempts: list[Attempt]) -> dict[str, Any]:
    """A card as the API shows it: its attempts, each with its checks summed up."""
    return card_json(card, attempts, store.latest_checks([a.id for a in attempts]))


@dataclass
class _Entry:
    card: Card
    attempts: list[Attempt]
    view: dict[str, Any]
    column: str
    text: str  # `view` as JSON, made once per change: a board read joins these texts, it does not re-serialise


class Board:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()        # the entries, swapped in by one thread while others read them
        self._refreshing = threading.Lock()  # one refresh at a time, its read and its swap together: swaps come
                                             # in the order of their reads, so the last swap has the latest read
        self._pending: set[str] = set()  # attempt ids changed and not applied (before the first load; a failure)
        self._entries: dict[str, _Entry] = {}  # card id → entry, in creation order once loaded
        self._card_of: dict[str, str] = {}  # attempt id → card id
        self._loaded = False
        self._version = 0  # one more whenever an entry changed
        self._bodies: dict[int | None, tuple[int, str]] = {}  # per_column → (version, the board as JSON)
        store.listeners.append(self._attempts_changed)

    def _attempts_changed(self, attempt_ids: set[str]) -> None:
        """A commit's notice: apply it now, so that reads find the board current (read-your-writes).

        Notices come one at a time (under the store's write lock), before the writes' callers go
        on. The store is read outside the board's lock, so a board read never waits for SQLite:
        only for the swap of the entries.
        """
        with self._lock:
            if not self._loaded:
                self._pending |= attempt_ids
                return   # the first read loads everything
        try:
            self._refresh(attempt_ids)
        except Exception:  # never the commit's failure: the next read tries these cards again
            log.exception("the board could not apply a change; the next read retries it")
            with self._lock:
                self._pending |= attempt_ids

    def load(self) -> None:
        """Build the projection from the store (at start; later commits only apply their changes)."""
        self._refresh(set())

    def _fresh(self) -> None:
        """Before a read: load the board, or apply what a notice could not."""
        with self._lock:
            stale = not self._loaded or bool(self._pending)
        if stale:
            self._refresh(set())

    def _refresh(self, attempt_ids: set[str]) -> None:
        """Read the cards of these attempts (and any pending; all before the first load) afresh, swap them in."""
        with self._refreshing:
            with self._lock:
                loaded, changed = self._loaded, attempt_ids | self._pending
            if not loaded:
                entries = self._read_all()
                with self._lock:
                    self._entries = entries
                    self._card_of = {a.id: card_id for card_id, e in entries.items() for a in e.attempts}
                    self._loaded = True
                    self._pending -= changed   # read after these changes: they are in
                    self._version += 1
                return
            built = self._build(changed)
            with self._lock:
                self._install(changed, built)

    def _read_all(self) -> dict[str, _Entry]:
        by_card: dict[str, list[Attempt]] = {}
        for attempt in self.store.all_attempts():
            by_card.setdefault(attempt.card_id, []).append(attempt)
        checks = self.store.latest_checks([a.id for attempts in by_card.values() for a in attempts])
        return {card.id: self._entry(card, sorted(by_card.get(card.id, []), key=lambda a: a.n), checks)
                for card in self.store.list_cards()}

    @staticmethod
    def _entry(card: Card, attempts: list[Attempt], checks: dict[str, list[dict[str, Any]]]) -> _Entry:
        view = card_json(card, attempts, {a.id: checks.get(a.id, []) for a in attempts})
        return _Entry(card, attempts, view, view["column"], json.dumps(view))

    def _build(self, changed: set[str]) -> dict[str, _Entry | None]:
        """The entries of the cards whose attempts changed (None: the card was deleted), read afresh."""
        card_of = self._card_of   # changed only by refreshes, and this one holds `_refreshing`
        card_ids = {card_of[a] for a in changed if a in card_of}
        unknown = [a for a in changed if a not in card_of]  # a new attempt (a new card, or a retry)
        if unknown:
            card_ids.update(self.store.card_ids_of(unknown).values())
        # read again in a few queries, whatever the number of cards: the card itself (archiving changes it),
        # its attempts, their latest checks
        cards = self.store.cards_by_id(card_ids)
        attempts = self.store.attempts_of_cards(list(cards))
        checks = self.store.latest_checks([a.id for group in attempts.values() for a in group])
        return {card_id: None if card_id not in cards else self._entry(cards[card_id], attempts.get(card_id, []),
                                                                        checks)
                for card_id in card_ids}

    def _install(self, changed: set[str], built: dict[str, _Entry | None]) -> None:
        """Swap the built entries in (under the lock); the changes they answer are done."""
        self._pending -= changed
        new = False
        for card_id, entry in built.items():
            if entry is None:  # deleted
                self._entries.pop(card_id, None)
                self._card_of = {a: c for a, c in self._card_of.items() if c != card_id}
                continue
            new = new or card_id not in self._entries
            self._entries[card_id] = entry
            self._card_of.update((a.id, card_id) for a in entry.attempts)
        if new:  # keep creation order, as the store lists them
            self._entries = dict(sorted(self._entries.items(), key=lambda i: (i[1].card.created_at, i[0])))
        self._version += 1

    def card(self, card_id: str) -> dict[str, Any]:
        self._fresh()
        with self._lock:
            entry = self._entries.get(card_id)
        if entry is None:
            raise NotFound(f"no card '{card_id}'")
        return entry.view

    def attempt(self, attempt_id: str) -> dict[str, Any]:
        """An attempt as the API shows it (its checks summed up), from the projection: no query."""
        self._fresh()
        with self._lock:
            entry = self._entries.get(self._card_of.get(attempt_id, ""))
        for item in entry.view["attempts"] if entry is not None else []:
            if item["id"] == attempt_id:
                return dict(item)
        raise NotFound(f"no attempt '{attempt_id}'")

    def cards(self) -> list[dict[str, Any]]:
        self._fresh()
        with self._lock:
            return [entry.view for entry in self._entries.values()]

    def queued(self) -> int:
        """Attempts waiting for a slot (for /v1/status)."""
        self._fresh()
        with self._lock:
            return sum(a.state == State.QUEUED for e in self._entries.values() for a in e.attempts)

    def _columns(self, per_column: int | None) -> list[tuple[Column, int, list[_Entry]]]:
        """Each column, its count and its cards shown (archived ones left out), oldest first."""
        columns: dict[str, list[_Entry]] = {str(c): [] for c in Column}
        for entry in self._entries.values():
            if entry.card.archived_at is None:  # archived: off the board; GET /v1/cards still lists it
                columns[entry.column].append(entry)
        shown = [(c, columns[str(c)]) for c in Column]
        return [(c, len(cards), cards if per_column is None else cards[max(0, len(cards) - per_column):])
                for c, cards in shown]

    def board(self, per_column: int | None = None) -> dict[str, Any]:
        """Cards by column (archived ones left out), oldest first.

        With `per_column`, only each column's newest N (the counts stay whole).
        """
        self._fresh()
        with self._lock:
            columns = self._columns(per_column)
        return {"columns": [{"id": str(c), "title": COLUMN_TITLES[c], "count": count,
                             "cards": [e.view for e in cards]} for c, count, cards in columns]}

    def board_json(self, per_column: int | None = None) -> str:
        """`board()` as JSON text, joined from each card's text and kept until the board changes.

        GET /v1/board is read far more often than the board changes; between changes it is
        the same string, and after one only the changed cards were serialised again.
        """
        self._fresh()
        with self._lock:
            cached = self._bodies.get(per_column)
            if cached is not None and cached[0] == self._version:
                return cached[1]
            version, columns = self._version, self._columns(per_column)
        body = '{"columns": [' + ", ".join(
            f'{{"id": {json.dumps(str(c))}, "title": {json.dumps(COLUMN_TITLES[c])}, "count": {count}, '
            f'"cards": [{", ".join(e.text for e in cards)}]}}' for c, count, cards in columns) + "]}"
        with self._lock:
            if len(self._bodies) >= 8:  # a few per_column values are in use (the web page's, ctl's): keep those
                self._bodies.clear()
            self._bodies[per_column] = (version, body)
        return body
