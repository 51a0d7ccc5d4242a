"""The pieces of waiting out a full disk: recognising it, the reserve, the floor, quiet logs, held writes."""

from __future__ import annotations

import contextlib
import errno
import logging
import sqlite3
from functools import partial
from pathlib import Path

import pytest

from kilod.diskspace import (
    WAIT_FOR_SPACE,
    DiskFull,
    DiskGuard,
    Held,
    RateLimitedLog,
    is_disk_full,
    persist,
    persist_async,
)
from kilod.domain import EventKind
from kilod.errors import Unavailable
from kilod.store import Store
from tests.daemon.records import fill_database, make_attempts, make_card, make_room


def test_a_full_disk_is_recognised_in_every_form_it_arrives_in() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    wrapped = Unavailable("git checkout failed: error: unable to write file: No space left on device")
    assert is_disk_full(wrapped)
    try:
        try:
            raise OSError(errno.EDQUOT, "quota")
        except OSError as inner:
            raise RuntimeError("while copying") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))
    assert DiskFull("x").status == 503


def test_the_reserve_is_made_only_with_room_and_freed_on_demand(tmp_path: Path) -> None:
    guard = DiskGuard(tmp_path, min_free_bytes=0, reserve_bytes=1024 * 1024)
    assert guard.make_reserve() and guard.reserve.stat().st_size == 1024 * 1024
    assert guard.reserve.stat().st_blocks * 512 >= 1024 * 1024  # real blocks, not a sparse hole
    assert guard.release_reserve() and not guard.reserve.exists()
    assert not guard.release_reserve()
    greedy = DiskGuard(tmp_path, min_free_bytes=guard.free() * 2, reserve_bytes=1024)
    assert not greedy.make_reserve() and greedy.below_floor()
    with pytest.raises(DiskFull) as refused:
        greedy.check_floor("a new card")
    assert "not enough disk space for a new card" in refused.value.message
    assert refused.value.details["min_free_bytes"] == greedy.min_free_bytes


def test_repeated_warnings_become_one_line_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(interval=3600)
    with caplog.at_level(logging.WARNING, logger="kilod.diskspace"):
        for _ in range(500):
            limited.warning("a", "disk full for %s", "a")
        limited.warning("b", "disk full for %s", "b")
    assert [r.getMessage() for r in caplog.records] == ["disk full for a", "disk full for b"]
    limited.interval = 0
    with caplog.at_level(logging.WARNING, logger="kilod.diskspace"):
        limited.warning("a", "disk full for %s", "a")
    assert caplog.records[-1].getMessage() == "disk full for a (499 more like this since the last line)"


async def test_a_held_write_is_retried_not_redone_and_needs_a_waiter() -> None:
    calls: list[str] = []

    def write() -> str:
        calls.append("write")
        if len(calls) < 3:
            raise DiskFull("database or disk is full")
        return "stored"

    with pytest.raises(DiskFull):  # outside an attempt nobody can wait: the error goes up
        await persist(write)

    waited: list[str] = []

    async def wait(exc: DiskFull, held: Held | None) -> bool:
        waited.append(str(exc))
        return False

    calls.clear()
    token = WAIT_FOR_SPACE.set(wait)
    try:
        assert await persist(write) == "stored"
    finally:
        WAIT_FOR_SPACE.reset(token)
    assert calls == ["write"] * 3 and len(waited) == 2


async def test_a_group_commit_write_held_through_a_full_database_is_written_once(store: Store, db_path: Path) -> None:
    card = make_card()
    (attempt,) = make_attempts(card)
    store.insert_card(card, [attempt])
    fill_database(store)
    waited: list[str] = []

    async def wait(exc: DiskFull, held: Held | None) -> bool:
        """As the pipeline's waiter: try the held write once; the second time, after space came back."""
        assert held is not None
        waited.append(str(exc))
        if len(waited) == 2:
            make_room(store)
        with contextlib.suppress(DiskFull):
            await held()
        return True

    token = WAIT_FOR_SPACE.set(wait)
    try:
        event = await persist_async(partial(store.append_event_async, attempt.id, EventKind.LOG,
                                            {"text": "x" * 200_000}))  # needs new pages
    finally:
        WAIT_FOR_SPACE.reset(token)
    assert len(waited) == 2 and "cannot be written" in waited[0]  # the writer thread's error, as DiskFull
    with sqlite3.connect(db_path) as other:  # written once, by the held write, and committed
        seqs = [r[0] for r in other.execute("SELECT seq FROM events WHERE attempt_id = ? ORDER BY seq", (attempt.id,))]
    assert seqs == [1, event.seq] == [1, 2]
