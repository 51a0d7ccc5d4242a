"""Cards and attempts to store in tests (plain data; the store, git and SQLite stay real)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kilod.domain import Attempt, Card, State, Step, attempt_id, branch_name, now

if TYPE_CHECKING:
    from kilod.store import Store


def make_card(card_id: str = "c0ffee01", repo: str = "/nowhere/repo", base_commit: str = "0" * 40) -> Card:
    return Card(id=card_id, title="a task", prompt="do the thing", repo=repo, base_ref="HEAD",
                base_commit=base_commit, network=False, created_at=now())


def make_attempts(card: Card, count: int = 1, model: str = "scripted/hello",
                  worktrees: str = "/nowhere/worktrees") -> list[Attempt]:
    attempts = []
    for n in range(1, count + 1):
        aid = attempt_id(card.id, n)
        attempts.append(Attempt(
            id=aid, card_id=card.id, n=n, model=model, runtime="docker", branch=branch_name(aid),
            worktree=f"{worktrees}/{aid}", state=State.QUEUED, step=Step.WORKTREE, created_at=card.created_at,
        ))
    return attempts


def fill_database(store: Store) -> None:
    """SQLite's own "database or disk is full" from now on: no page may be added to the store's file."""
    with store._write_lock:
        pages = store._wdb.execute("PRAGMA page_count").fetchone()[0]
        store._wdb.execute(f"PRAGMA max_page_count = {pages}")


def make_room(store: Store) -> None:
    """Space is back: the store's file may grow again (SQLite's default page limit)."""
    with store._write_lock:
        store._wdb.execute("PRAGMA max_page_count = 1073741823")
