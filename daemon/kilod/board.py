"""The board read back: cards with their attempts, and cards by column."""

from __future__ import annotations

from typing import Any

from kilod.domain import COLUMN_TITLES, Attempt, Card, Column, card_json, column_of
from kilod.store import Store


def card_view(store: Store, card: Card, attempts: list[Attempt]) -> dict[str, Any]:
    """A card as the API shows it: its attempts, each with its checks summed up."""
    return card_json(card, attempts, {a.id: store.checks_of(a.id) for a in attempts})


class Board:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _json(self, card: Card, attempts: list[Attempt]) -> dict[str, Any]:
        return card_view(self.store, card, attempts)

    def card(self, card_id: str) -> dict[str, Any]:
        return self._json(self.store.get_card(card_id), self.store.attempts_of(card_id))

    def cards(self) -> list[dict[str, Any]]:
        return [self._json(c, self.store.attempts_of(c.id)) for c in self.store.list_cards()]

    def board(self) -> dict[str, Any]:
        columns: dict[str, list[dict[str, Any]]] = {str(c): [] for c in Column}
        for card in self.store.list_cards():
            if card.archived_at is not None:
                continue  # off the board; GET /v1/cards still lists it
            attempts = self.store.attempts_of(card.id)
            columns[str(column_of([a.state for a in attempts]))].append(self._json(card, attempts))
        return {
            "columns": [{"id": str(c), "title": COLUMN_TITLES[c], "cards": columns[str(c)]} for c in Column]
        }
