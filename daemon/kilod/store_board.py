"""Batch reads for the board's projection: a refresh after 20 attempts moved is a few
queries, not three per card (each query lets go of the GIL, and under load getting
it back is what costs the event loop, not the query).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from kilod.domain import Attempt, Card
from kilod.store_base import StoreBase
from kilod.store_rows import ATTEMPT_COLUMNS, attempt_of, card_of, chunks


class BoardReads(StoreBase):
    def cards_by_id(self, card_ids: Collection[str]) -> dict[str, Card]:
        """The cards there are of `card_ids` (a deleted one is missing)."""
        cards: dict[str, Card] = {}
        for chunk, marks in chunks(card_ids):
            cards.update((r["id"], card_of(r)) for r in self._db.execute(
                f"SELECT * FROM cards WHERE id IN ({marks})", chunk))
        return cards

    def attempts_of_cards(self, card_ids: Collection[str]) -> dict[str, list[Attempt]]:
        """Each card's attempts, by n (a card without any is missing)."""
        attempts: dict[str, list[Attempt]] = {}
        for chunk, marks in chunks(card_ids):
            for row in self._db.execute(f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE card_id IN ({marks})"
                                        " ORDER BY card_id, n", chunk):
                attempts.setdefault(row["card_id"], []).append(attempt_of(row))
        return attempts

    def card_ids_of(self, attempt_ids: Collection[str]) -> dict[str, str]:
        """attempt id → card id, for those of `attempt_ids` that exist."""
        found: dict[str, str] = {}
        for chunk, marks in chunks(attempt_ids):
            found.update((r[0], r[1]) for r in self._db.execute(
                f"SELECT id, card_id FROM attempts WHERE id IN ({marks})", chunk))
        return found

    def latest_checks(self, attempt_ids: Collection[str]) -> dict[str, list[dict[str, Any]]]:
        """`checks_of(a)` for each of `attempt_ids` that has checks: the latest run's, by index."""
        checks: dict[str, list[dict[str, Any]]] = {}
        for chunk, marks in chunks(attempt_ids):
            rows = self._db.execute(
                "SELECT c.* FROM checks c JOIN (SELECT attempt_id, MAX(run) AS run FROM checks"
                f" WHERE attempt_id IN ({marks}) GROUP BY attempt_id) latest"
                " ON c.attempt_id = latest.attempt_id AND c.run = latest.run ORDER BY c.attempt_id, c.idx", chunk)
            for row in rows:
                checks.setdefault(row["attempt_id"], []).append(dict(row))
        return checks
