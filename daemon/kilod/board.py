"""The board read back: cards with their attempts, and cards by column, from memory.

The board is read far more often than it changes (every `ctl board --watch`, every
web page, every few seconds), and 20 busy attempts change it ~100 times a second.
So it is a projection: built from the store once, then kept current by the store's
commit notices (`Store.listeners`: the attempts each commit changed). A read
re-reads only the cards whose attempts changed since the last read; every other
card's JSON is reused as it is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from kilod.domain import COLUMN_TITLES, Attempt, Card, Column, State, card_json
from kilod.errors import NotFound
from kilod.store import Store


def card_view(store: Store, card: Card, attempts: list[Attempt]) -> dict[str, Any]:
    """A card as the API shows it: its attempts, each with its checks summed up."""
    return card_json(card, attempts, {a.id: store.checks_of(a.id) for a in attempts})


@dataclass
class _Entry:
    card: Card
    attempts: list[Attempt]
    view: dict[str, Any]
    column: str


class Board:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()  # commit notices come from the writer thread
        self._changed: set[str] = set()  # attempt ids changed since the last read
        self._entries: dict[str, _Entry] = {}  # card id → entry, in creation order once loaded
        self._card_of: dict[str, str] = {}  # attempt id → card id
        self._loaded = False
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
        entries = {}
        for card in self.store.list_cards():
            entries[card.id] = self._entry(card, sorted(by_card.get(card.id, []), key=lambda a: a.n))
        self._entries = entries
        self._card_of = {a.id: card_id for card_id, e in entries.items() for a in e.attempts}
        self._loaded = True

    def _entry(self, card: Card, attempts: list[Attempt]) -> _Entry:
        view = card_view(self.store, card, attempts)
        return _Entry(card, attempts, view, view["column"])

    def _current(self) -> dict[str, _Entry]:
        if not self._loaded:
            self.load()
        with self._lock:
            changed, self._changed = self._changed, set()
        cards: set[str] = set()
        for attempt_id in changed:
            card_id = self._card_of.get(attempt_id)
            if card_id is None:  # a new attempt (a new card, or a retry)
                try:
                    card_id = self.store.get_attempt(attempt_id).card_id
                except NotFound:
                    continue
            cards.add(card_id)
        new = False
        for card_id in cards:
            new = new or card_id not in self._entries
            try:
                card = self.store.get_card(card_id)  # read again: archiving changes the card itself
            except NotFound:  # deleted
                self._entries.pop(card_id, None)
                self._card_of = {a: c for a, c in self._card_of.items() if c != card_id}
                continue
            attempts = self.store.attempts_of(card_id)
            self._entries[card_id] = self._entry(card, attempts)
            self._card_of.update((a.id, card_id) for a in attempts)
        if new:  # keep creation order, as the store lists them
            self._entries = dict(sorted(self._entries.items(), key=lambda i: (i[1].card.created_at, i[0])))
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

    def board(self, per_column: int | None = None) -> dict[str, Any]:
        """Cards by column (archived ones left out), oldest first.

        With `per_column`, only each column's newest N (the counts stay whole).
        """
        columns: dict[str, list[dict[str, Any]]] = {str(c): [] for c in Column}
        for entry in self._current().values():
            if entry.card.archived_at is None:  # archived: off the board; GET /v1/cards still lists it
                columns[entry.column].append(entry.view)

        def shown(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return cards if per_column is None else cards[max(0, len(cards) - per_column):]

        return {"columns": [{"id": str(c), "title": COLUMN_TITLES[c], "count": len(columns[str(c)]),
                             "cards": shown(columns[str(c)])} for c in Column]}
