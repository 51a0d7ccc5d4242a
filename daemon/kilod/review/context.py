"""What every review operation starts from: the attempt, its card, its repository; and the card locks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from kilod.domain import Attempt, Card
from kilod.errors import Conflict
from kilod.git.repository import Repositories, Repository
from kilod.store import Store

# Stops a live attempt's pipeline and marks it cancelled (the scheduler's cancel).
Stop = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class AttemptContext:
    attempt: Attempt
    card: Card
    repo: Repository

    def worktree(self) -> Path:
        """The attempt's worktree; Conflict once it is gone (approved, discarded)."""
        worktree = Path(self.attempt.worktree)
        if not worktree.is_dir():
            raise Conflict(f"attempt {self.attempt.id} has no worktree (state: {self.attempt.state})")
        return worktree


async def open_attempt(store: Store, repositories: Repositories, attempt_id: str) -> AttemptContext:
    attempt = store.get_attempt(attempt_id)
    card = store.get_card(attempt.card_id)
    return AttemptContext(attempt, card, await repositories.open(card.repo))


class CardLocks:
    """One landing operation per card at a time: approving one attempt discards its siblings."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def of(self, attempt: Attempt) -> asyncio.Lock:
        return self._locks.setdefault(attempt.card_id, asyncio.Lock())
