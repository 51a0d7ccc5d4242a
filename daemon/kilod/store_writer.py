"""Group commit: one thread writes for everyone, many callers' work in one transaction.

With `synchronous=FULL` every COMMIT is an fsync: committing each event on its own
put one fsync per event on the event loop's thread. Here callers queue their work
(a function of the write connection) and wait on a future; the writer takes what is
queued, runs each piece inside its own SAVEPOINT (one failing piece is rolled back
alone and fails only its caller), commits once, and only then resolves the futures.
So a caller never hears "done" before its write is durable, and 20 busy attempts
share an fsync instead of queueing for 20.

An error that ends the whole transaction (a full disk: SQLite rolls back itself, or the
COMMIT fails) goes to every caller in the batch, none of whose work was kept; the
store's `map_error` turns it into what callers expect (a full disk into `DiskFull`).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)

# A batch is what was queued when the writer got to it, at most this many pieces.
MAX_BATCH = 256

Work = Callable[[sqlite3.Connection], Any]
_STOP = None


class GroupWriter:
    def __init__(self, db: sqlite3.Connection, lock: threading.Lock,
                 committed: Callable[[], None], rolled_back: Callable[[], None],
                 map_error: Callable[[Exception], Exception] = lambda exc: exc) -> None:
        self._db = db
        self._map_error = map_error
        self._lock = lock  # shared with Store.transaction: one writer on the connection at a time
        self._committed = committed
        self._rolled_back = rolled_back
        self._queue: queue.SimpleQueue[tuple[Work, Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, work: Work) -> Future[Any]:
        future: Future[Any] = Future()
        with self._start_lock:
            if self._thread is None:  # started on first use: a Store that only reads costs no thread
                self._thread = threading.Thread(target=self._run, name="kilod-store-writer", daemon=True)
                self._thread.start()
        self._queue.put((work, future))
        return future

    def stop(self) -> None:
        """Finish what is queued, then end the thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[tuple[Work, Future[Any]]]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        db = self._db
        with self._lock:
            try:
                db.execute("BEGIN IMMEDIATE")
                for work, future in batch:
                    if not future.set_running_or_notify_cancel():
                        continue
                    db.execute("SAVEPOINT piece")
                    try:
                        result = work(db)
                    except Exception as exc:  # the caller's error: handed back to it alone
                        if not db.in_transaction:  # SQLite ended the whole transaction (a full disk does)
                            raise
                        db.execute("ROLLBACK TO piece")
                        db.execute("RELEASE piece")
                        outcomes.append((future, None, self._map_error(exc)))
                    else:
                        db.execute("RELEASE piece")
                        outcomes.append((future, result, None))
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.exception("rollback of a group commit failed")
                self._rolled_back()
                failure = self._map_error(exc) if isinstance(exc, Exception) else exc
                for _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
                if not isinstance(exc, Exception):
                    raise
                return
            self._committed()
        for future, result, error in outcomes:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
