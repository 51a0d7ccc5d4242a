"""Group commit through the writer thread, on a real SQLite file: durable before the caller resumes,
one failing piece fails alone, many attempts' writes share commits, and the board's projection follows."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from kilod.board import Board
from kilod.diskspace import DiskFull
from kilod.domain import Column, EventKind, State
from kilod.store import Store
from tests.daemon.records import fill_database, make_attempts, make_card, make_room


def committed_events(db_path: Path, attempt_id: str) -> list[int]:
    """Seq numbers another connection sees: only committed rows."""
    with sqlite3.connect(db_path) as other:
        return [r[0] for r in other.execute("SELECT seq FROM events WHERE attempt_id = ? ORDER BY seq", (attempt_id,))]


async def test_an_async_write_is_committed_before_it_returns(store: Store, db_path: Path) -> None:
    card = make_card()
    (attempt,) = make_attempts(card)
    store.insert_card(card, [attempt])
    event = await store.append_event_async(attempt.id, EventKind.LOG, {"message": "hi"})
    assert event.seq == 2
    assert committed_events(db_path, attempt.id) == [1, 2]


async def test_many_attempts_share_commits_and_keep_their_order(store: Store, db_path: Path) -> None:
    attempts = []
    for i in range(20):
        card = make_card(f"c0ffee{i:02d}")
        attempts += make_attempts(card)
        store.insert_card(card, attempts[-1:])
    commits = 0
    real_commit = store._writer._commit  # count group commits by wrapping the writer's own step

    def counting(batch):  # type: ignore[no-untyped-def]
        nonlocal commits
        commits += 1
        real_commit(batch)

    store._writer._commit = counting  # type: ignore[method-assign]

    async def busy(attempt_id: str) -> list[int]:
        return [(await store.append_event_async(attempt_id, EventKind.LOG, {"n": n})).seq for n in range(10)]

    results = await asyncio.gather(*(busy(a.id) for a in attempts))
    assert all(seqs == list(range(2, 12)) for seqs in results)
    assert all(committed_events(db_path, a.id) == list(range(1, 12)) for a in attempts)
    assert commits < 200  # 200 writes; concurrent ones were grouped


async def test_a_failing_piece_fails_alone(store: Store, db_path: Path) -> None:
    card = make_card()
    (attempt,) = make_attempts(card)
    store.insert_card(card, [attempt])
    good = store.append_event_async(attempt.id, EventKind.LOG, {"ok": True})
    bad = store.append_event_async("no-such-attempt", EventKind.LOG, {})  # a foreign key refuses it
    also_good = store.update_attempt_async(attempt.id, None, summary="still written")
    results = await asyncio.gather(good, bad, also_good, return_exceptions=True)
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert committed_events(db_path, attempt.id) == [1, 2]
    assert store.get_attempt(attempt.id).summary == "still written"
    with pytest.raises(ValueError, match="not updatable"):
        await store.update_attempt_async(attempt.id, None, card_id="x")


async def test_sync_and_async_writers_do_not_collide(store: Store, db_path: Path) -> None:
    card = make_card()
    (attempt,) = make_attempts(card)
    store.insert_card(card, [attempt])

    def sync_writes() -> None:
        for n in range(50):
            store.append_event(attempt.id, EventKind.LOG, {"sync": n})

    thread = threading.Thread(target=sync_writes)
    thread.start()
    for n in range(50):
        await store.append_event_async(attempt.id, EventKind.LOG, {"async": n})
    thread.join()
    assert committed_events(db_path, attempt.id) == list(range(1, 102))


async def test_the_board_projection_follows_commits(store: Store) -> None:
    board = Board(store)
    board.load()
    assert [c["count"] for c in board.board()["columns"]] == [0] * len(Column)
    cards = []
    for i in range(5):
        card = make_card(f"feed{i:04d}")
        store.insert_card(card, make_attempts(card, 2))
        cards.append(card)
    assert board.queued() == 10
    todo = board.board()["columns"][0]
    assert (todo["id"], todo["count"], [c["id"] for c in todo["cards"]]) == (
        str(Column.TODO), 5, [c.id for c in cards])
    newest = board.board(per_column=2)["columns"][0]
    assert (newest["count"], [c["id"] for c in newest["cards"]]) == (5, [cards[3].id, cards[4].id])
    # a change through the writer thread moves the card
    first = f"{cards[0].id}-1"
    await store.update_attempt_async(first, None, state=State.STARTING)
    doing = {c["id"]: c for c in board.board()["columns"]}[str(Column.DOING)]
    assert [c["id"] for c in doing["cards"]] == [cards[0].id]
    assert board.card(cards[0].id)["attempts"][0]["state"] == "starting"
    assert board.queued() == 9
    # a fresh projection of the same store agrees with the one kept current
    again = Board(store)
    again.load()
    assert again.board() == board.board()



async def test_a_full_database_fails_every_caller_of_the_batch_as_disk_full(store: Store, db_path: Path) -> None:
    card = make_card()
    (attempt,) = make_attempts(card)
    store.insert_card(card, [attempt])
    fill_database(store)
    big = "x" * 200_000  # needs new pages
    results = await asyncio.gather(*(store.append_event_async(attempt.id, EventKind.LOG, {"n": n, "text": big})
                                     for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, DiskFull) for r in results), results
    assert "cannot be written" in str(results[0])
    assert committed_events(db_path, attempt.id) == [1]  # nothing half-written
    make_room(store)
    event = await store.append_event_async(attempt.id, EventKind.LOG, {"text": big})  # room again: writes go on
    assert committed_events(db_path, attempt.id) == [1, event.seq]
