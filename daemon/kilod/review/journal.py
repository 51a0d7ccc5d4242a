"""The landing journal: each approve's plan written before any ref moves, its end written after.

A landing moves up to two refs and rewrites a person's checkout; a daemon that dies
in between must not leave that half done. The plan (every commit and ref it will
move, and which checkout it updates) is stored, synced, before the first move; the
entry is closed once the attempt is recorded as approved. Entries still open at the
next start are finished by `Landing.recover` (see `kilod.git.recovery`).

Its own SQLite file next to the store, so a landing never waits on the event log. Like
the store's, its "disk is full" leaves here as `DiskFull` (503), mapped once at this boundary.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from kilod.diskspace import DiskFull, is_disk_full
from kilod.git.landing import LandingPlan, MergePlan, MergeTarget

SCHEMA = """
CREATE TABLE IF NOT EXISTS landings (
    attempt_id  TEXT PRIMARY KEY,
    plan        TEXT NOT NULL,      -- LandingPlan as JSON
    target      TEXT,               -- MergeTarget as JSON, when it merges
    started_at  REAL NOT NULL,
    finished_at REAL,
    result      TEXT
)
"""


@dataclass(frozen=True)
class OpenLanding:
    attempt_id: str
    plan: LandingPlan
    target: MergeTarget | None


def _plan_from(text: str) -> LandingPlan:
    data = json.loads(text)
    merge = data.pop("merge")
    return LandingPlan(**data, merge=None if merge is None else MergePlan(**{**merge,
                                                                            "drivers": tuple(merge["drivers"])}))


class LandingJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        with self._disk_full_mapped():
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")   # the intent is on disk before a ref moves
            self._db.execute(SCHEMA)

    @contextmanager
    def _disk_full_mapped(self) -> Iterator[None]:
        """A full disk (SQLite's SQLITE_FULL, the kernel's ENOSPC) leaves as DiskFull; other errors as they are."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            if not is_disk_full(exc):
                raise
            raise DiskFull(f"the landing journal cannot be written: {exc} ({self.path})") from exc

    def begin(self, attempt_id: str, plan: LandingPlan, target: MergeTarget | None) -> None:
        """Store the plan, synced; DiskFull (nothing moved, nothing to recover) if the disk is full."""
        with self._lock, self._disk_full_mapped():
            self._db.execute(
                "INSERT OR REPLACE INTO landings (attempt_id, plan, target, started_at) VALUES (?, ?, ?, ?)",
                (attempt_id, json.dumps(asdict(plan)), None if target is None else json.dumps(asdict(target)),
                 time.time()))

    def finish(self, attempt_id: str, result: str) -> None:
        with self._lock, self._disk_full_mapped():
            self._db.execute("UPDATE landings SET finished_at = ?, result = ? WHERE attempt_id = ?",
                             (time.time(), result, attempt_id))

    def unfinished(self) -> list[OpenLanding]:
        with self._lock, self._disk_full_mapped():
            rows = self._db.execute("SELECT attempt_id, plan, target FROM landings WHERE finished_at IS NULL "
                                    "ORDER BY started_at").fetchall()
        return [OpenLanding(attempt_id, _plan_from(plan), None if target is None else MergeTarget(**json.loads(target)))
                for attempt_id, plan, target in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
