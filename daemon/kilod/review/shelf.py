"""Cards off the board: archive (hidden, kept, reversible) and delete (attempts discarded first).

Deleting loses nothing a person kept: an approved attempt's branch (its landed commit) stays
in the repository; every other attempt is discarded the ordinary way (container, worktree and
branch removed, each step durable), and only then are the card's rows removed in one
transaction. A daemon killed half-way leaves a card whose attempts are discarded: deleting it
again finishes the job.
"""

from __future__ import annotations

from typing import TypedDict

from kilod.domain import LIVE_STATES, State, now
from kilod.errors import Conflict
from kilod.review.landing import Landing
from kilod.store import Store

BUSY = LIVE_STATES | {State.REVIEW}   # work under way, or a decision waiting: not something to hide


class Deleted(TypedDict):
    card_id: str
    discarded: list[str]
    kept_branches: list[str]


class Shelf:
    def __init__(self, store: Store, landing: Landing) -> None:
        self.store = store
        self.landing = landing

    def archive(self, card_id: str) -> None:
        self.store.get_card(card_id)  # 404 first
        busy = [a for a in self.store.attempts_of(card_id) if a.state in BUSY]
        if busy:
            listed = ", ".join(f"{a.id} ({a.state})" for a in busy)
            raise Conflict(f"card {card_id} still has work on the board: {listed}; approve, discard or cancel "
                           "it first (or delete the card)", attempts=[a.id for a in busy])
        self.store.set_archived(card_id, now())

    def unarchive(self, card_id: str) -> None:
        self.store.get_card(card_id)
        self.store.set_archived(card_id, None)

    async def delete(self, card_id: str) -> Deleted:
        self.store.get_card(card_id)
        discarded = []
        for attempt in self.store.attempts_of(card_id):
            if attempt.state not in (State.APPROVED, State.DISCARDED):
                await self.landing.discard(attempt.id)
                discarded.append(attempt.id)
        kept = [a.branch for a in self.store.attempts_of(card_id) if a.state == State.APPROVED]
        self.store.delete_card(card_id)
        return {"card_id": card_id, "discarded": discarded, "kept_branches": kept}
