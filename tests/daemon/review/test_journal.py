"""The landing journal (landings.db) on a real small filesystem: a full disk is DiskFull (503), never a 500."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from kilod.diskspace import DiskFull
from kilod.errors import Unavailable
from kilod.git.landing import LandingPlan
from kilod.review.journal import LandingJournal

PLAN = LandingPlan(branch="kilod/c0ffee01-1", branch_head="1" * 40, commit="2" * 40, merge=None)


def fill(disk: Path) -> Path:
    """Write zeros until the filesystem has no byte left; the file, to free the space again."""
    filler = disk / "fill.bin"
    chunk = b"\0" * (1024 * 1024)
    with filler.open("wb", buffering=0) as out:  # unbuffered: nothing left to fail again at close
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_makes_the_journal_raise_disk_full_and_room_lets_it_write_again(small_disk: Path) -> None:
    journal = LandingJournal(small_disk / "landings.db")
    try:
        filler = fill(small_disk)
        with pytest.raises(DiskFull, match="landing journal cannot be written") as full:
            journal.begin("c0ffee01-1", PLAN, None)
        assert isinstance(full.value, Unavailable) and full.value.status == 503
        assert full.value.reason == "disk_full"
        assert journal.unfinished() == []  # nothing half-written: the approve moves no ref

        filler.unlink()
        journal.begin("c0ffee01-1", PLAN, None)
        (entry,) = journal.unfinished()
        assert (entry.attempt_id, entry.plan) == ("c0ffee01-1", PLAN)
        journal.finish("c0ffee01-1", "landed")
        assert journal.unfinished() == []
    finally:
        journal.close()
