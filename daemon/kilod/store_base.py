"""The store's connections and transactions: the one writer of what should exist.

WAL, `synchronous=FULL`; every write is a short `BEGIN IMMEDIATE` transaction and
nothing is held across a Docker, git or model call. The schema is versioned by
`PRAGMA user_version`; migrations only ever append.

Reads use a connection per thread, so they never wait for a commit and each sees every
commit made before it (`_db`). Writes use the write connection under one lock: the
`…_async` methods hand their work to the writer thread (`GroupWriter`), which commits
everything queued meanwhile, from many attempts, in one transaction with one fsync, and
only then resolves the callers, so an event is durable before anyone can publish it
(kill -9 safety unchanged). The sync methods take the same lock on the caller's thread:
for cold paths and tests.
After each commit the `listeners` are told which attempts changed (the board's
projection keeps itself current that way).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from kilod.diskspace import DiskFull, is_disk_full
from kilod.domain import Event, EventKind, now
from kilod.store_schema import MIGRATIONS
from kilod.store_writer import GroupWriter

T = TypeVar("T")


class StoreBase:
    """Connections, `transaction()`, the writer thread and the event append every table's writes share."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wdb = self._connect(path)
        self._wdb.execute("PRAGMA journal_mode=WAL")
        self._write_lock = threading.Lock()
        # attempts the transaction under way changed; told to `listeners` once it commits
        self._touched: set[str] = set()
        self.listeners: list[Callable[[set[str]], None]] = []
        self._migrate()
        # reads: never behind the writer's lock, each thread on a connection of its own (`_db`)
        self._thread_reads = threading.local()
        self._read_connections: list[sqlite3.Connection] = []
        self._read_connections_lock = threading.Lock()
        self._closed = False
        self._writer = GroupWriter(self._wdb, self._write_lock, self._committed, self._rolled_back,
                                   self._write_error)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE … COMMIT)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    @property
    def _db(self) -> sqlite3.Connection:
        """The calling thread's read connection.

        Reads on one connection share a snapshot while any of its statements is under way: on
        a connection shared by threads, a read made during another thread's query saw the
        database as that query began, before a commit already done (the board's projection kept
        a card in a column it had left). Each thread reads on its own, so a read sees every
        commit made before it.
        """
        db: sqlite3.Connection | None = getattr(self._thread_reads, "db", None)
        if db is None:
            with self._read_connections_lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                db = self._connect(self.path)
                self._read_connections.append(db)
            self._thread_reads.db = db
        return db

    def close(self) -> None:
        self._writer.stop()
        with self._read_connections_lock:
            self._closed = True
            for db in self._read_connections:
                db.close()
        self._wdb.close()

    def _committed(self) -> None:
        """Under the write lock, right after COMMIT: tell the listeners what changed."""
        touched, self._touched = self._touched, set()
        if touched:
            for listener in self.listeners:
                listener(touched)

    def _write_error(self, exc: Exception) -> Exception:
        """A full disk leaves the store as DiskFull (503, the attempt pauses); other errors as they are."""
        if isinstance(exc, sqlite3.OperationalError) and is_disk_full(exc):
            error = DiskFull(f"the store cannot be written: {exc} ({self.path.parent})")
            error.__cause__ = exc
            return error
        return exc

    def _rolled_back(self) -> None:
        self._touched = set()

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(db)` in the writer thread's next group commit; return once it is durable."""
        return await asyncio.wrap_future(self._writer.submit(work))

    @property
    def schema_version(self) -> int:
        return int(self._wdb.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction() as db:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT on the caller's thread (the writer thread waits meanwhile).

        A full disk leaves as DiskFull (503, the attempt pauses), nothing half-written.
        """
        with self._write_lock:
            db = self._wdb
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL does)
                        db.execute("ROLLBACK")
                    self._rolled_back()
                    raise
                db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                self._rolled_back()
                error = self._write_error(exc)
                if error is exc:
                    raise
                raise error from exc
            self._committed()


    def _append_event(self, db: sqlite3.Connection, attempt_id: str, kind: EventKind,
                      payload: dict[str, Any]) -> Event:
        self._touched.add(attempt_id)
        seq = db.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE attempt_id = ?", (attempt_id,)
        ).fetchone()[0]
        at = now()
        cursor = db.execute(
            "INSERT INTO events (attempt_id, seq, time, kind, payload) VALUES (?, ?, ?, ?, ?)",
            (attempt_id, seq, at, str(kind), json.dumps(payload)),
        )
        return Event(id=int(cursor.lastrowid or 0), attempt_id=attempt_id, seq=seq, time=at,
                     kind=kind, payload=payload)
