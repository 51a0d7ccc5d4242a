"""The board read back: cards with their attempts, and cards by column, from memory.

The board is read far more often than it changes (every `ctl board --watch`, every
web page, every few seconds), and 20 busy attempts change it ~100 times a second.
So it is a projection: built from the store once, then kept current by the store's
commit notices (`Store.listeners`: the attempts each commit changed). A read
re-reads only the cards whose attempts changed since the last read, all of them in a
few queries; every other card's JSON is reused as it is, as a dict and as text.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from kilod.domain import COLUMN_TITLES, Attempt, Card, Column, State, card_json
from kilod.errors import NotFound
from kilod.store import Store


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
        self._lock = threading.Lock()  # commit notices come from the writer thread
        self._changed: set[str] = set()  # attempt ids changed since the last read
        self._entries: dict[str, _Entry] = {}  # card id → entry, in creation order once loaded
        self._card_of: dict[str, str] = {}  # attempt id → card id
        self._loaded = False
        self._version = 0  # one more whenever an entry changed
        self._bodies: dict[int | None, tuple[int, str]] = {}  # per_column → (version, the board as JSON)
        store.listeners.append(self._attempts_changed)

    def _attempts_changed(self, attempt_ids: set[str]) -> None:
        with self._lock:
            self._changed |= attempt_ids

    def load(self) -> None:
        """Build the projection from the store (at start; later reads only apply changes)."""
        with self._lock:
            self._changed.clear()
        by_card: dict[str, list[Attempt]] = {}
        for attempt in self.store.all_attempts():
            by_card.setdefault(attempt.card_id, []).append(attempt)
        checks = self.store.latest_checks([a.id for attempts in by_card.values() for a in attempts])
        entries = {}
        for card in self.store.list_cards():
            entries[card.id] = self._entry(card, sorted(by_card.get(card.id, []), key=lambda a: a.n), checks)
        self._entries = entries
        self._card_of = {a.id: card_id for card_id, e in entries.items() for a in e.attempts}
        self._loaded = True
        self._version += 1

    @staticmethod
    def _entry(card: Card, attempts: list[Attempt], checks: dict[str, list[dict[str, Any]]]) -> _Entry:
        view = card_json(card, attempts, {a.id: checks.get(a.id, []) for a in attempts})
        return _Entry(card, attempts, view, view["column"], json.dumps(view))

    def _current(self) -> dict[str, _Entry]:
        if not self._loaded:
            self.load()
        with self._lock:
            changed, self._changed = self._changed, set()
        if not changed:
            return self._entries
        card_ids = {self._card_of[a] for a in changed if a in self._card_of}
        unknown = [a for a in changed if a not in self._card_of]  # a new attempt (a new card, or a retry)
        if unknown:
            card_ids.update(self.store.card_ids_of(unknown).values())
        # read again in a few queries, whatever the number of cards: the card itself (archiving changes it),
        # its attempts, their latest checks
        cards = self.store.cards_by_id(card_ids)
        attempts = self.store.attempts_of_cards(list(cards))
        checks = self.store.latest_checks([a.id for group in attempts.values() for a in group])
        new = False
        for card_id in card_ids:
            card = cards.get(card_id)
            if card is None:  # deleted
                self._entries.pop(card_id, None)
                self._card_of = {a: c for a, c in self._card_of.items() if c != card_id}
                continue
            new = new or card_id not in self._entries
            group = attempts.get(card_id, [])
            self._entries[card_id] = self._entry(card, group, checks)
            self._card_of.update((a.id, card_id) for a in group)
        if new:  # keep creation order, as the store lists them
            self._entries = dict(sorted(self._entries.items(), key=lambda i: (i[1].card.created_at, i[0])))
        self._version += 1
        return self._entries

    def card(self, card_id: str) -> dict[str, Any]:
        entry = self._current().get(card_id)
        if entry is None:
            raise NotFound(f"no card '{card_id}'")
        return entry.view

    def cards(self) -> list[dict[str, Any]]:
        return [entry.view for entry in self._current().values()]

    def queued(self) -> int:
        """Attempts waiting for a slot (for /v1/status)."""
        return sum(a.state == State.QUEUED for e in self._current().values() for a in e.attempts)

    def _columns(self, per_column: int | None) -> list[tuple[Column, int, list[_Entry]]]:
        """Each column, its count and its cards shown (archived ones left out), oldest first."""
        columns: dict[str, list[_Entry]] = {str(c): [] for c in Column}
        for entry in self._current().values():
            if entry.card.archived_at is None:  # archived: off the board; GET /v1/cards still lists it
                columns[entry.column].append(entry)
        shown = [(c, columns[str(c)]) for c in Column]
        return [(c, len(cards), cards if per_column is None else cards[max(0, len(cards) - per_column):])
                for c, cards in shown]

    def board(self, per_column: int | None = None) -> dict[str, Any]:
        """Cards by column (archived ones left out), oldest first.

        With `per_column`, only each column's newest N (the counts stay whole).
        """
        return {"columns": [{"id": str(c), "title": COLUMN_TITLES[c], "count": count,
                             "cards": [e.view for e in cards]} for c, count, cards in self._columns(per_column)]}

    def board_json(self, per_column: int | None = None) -> str:
        """`board()` as JSON text, joined from each card's text and kept until the board changes.

        GET /v1/board is read far more often than the board changes; between changes it is
        the same string, and after one only the changed cards were serialised again.
        """
        self._current()
        cached = self._bodies.get(per_column)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        body = '{"columns": [' + ", ".join(
            f'{{"id": {json.dumps(str(c))}, "title": {json.dumps(COLUMN_TITLES[c])}, "count": {count}, '
            f'"cards": [{", ".join(e.text for e in cards)}]}}' for c, count, cards in self._columns(per_column)) + "]}"
        if len(self._bodies) >= 8:  # a few per_column values are in use (the web page's, ctl's): keep those
            self._bodies.clear()
        self._bodies[per_column] = (self._version, body)
        return body
