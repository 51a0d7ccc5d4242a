"""What review reads in the store: each run's check results and a person's comments on the diff."""

from __future__ import annotations

import sqlite3
from typing import Any

from kilod.domain import Event, EventKind, now
from kilod.store_base import StoreBase


class ReviewTables(StoreBase):
    # -- checks ---------------------------------------------------------------

    def record_check(self, attempt_id: str, run: int, idx: int, result: dict[str, Any]) -> Event:
        """Store one check's result (replacing a re-run's) and log it, in one transaction."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO checks (attempt_id, run, idx, name, command, status, exit_code, duration,"
                " output_tail, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (attempt_id, run, idx, result["name"], result["command"], result["status"], result["exit_code"],
                 result["duration"], result["output_tail"], now()),
            )
            return self._append_event(db, attempt_id, EventKind.CHECK, {**result, "run": run, "index": idx})

    def checks_of(self, attempt_id: str, run: int | None = None) -> list[dict[str, Any]]:
        """The checks of one run (default: the attempt's latest run that has any)."""
        if run is None:
            row = self._db.execute("SELECT MAX(run) FROM checks WHERE attempt_id = ?", (attempt_id,)).fetchone()
            run = row[0]
            if run is None:
                return []
        rows = self._db.execute("SELECT * FROM checks WHERE attempt_id = ? AND run = ? ORDER BY idx",
                                (attempt_id, run))
        return [dict(r) for r in rows]

    # -- review comments ------------------------------------------------------

    def add_comment(self, attempt_id: str, path: str, line: int, text: str) -> dict[str, Any]:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO comments (attempt_id, path, line, text, created_at) VALUES (?, ?, ?, ?, ?)",
                (attempt_id, path, line, text, now()),
            )
            comment_id = int(cursor.lastrowid or 0)
        return self._comment(self._db.execute("SELECT * FROM comments WHERE id = ?", (comment_id,)).fetchone())

    def comments(self, attempt_id: str, pending_only: bool = False) -> list[dict[str, Any]]:
        query = "SELECT * FROM comments WHERE attempt_id = ?" + (" AND sent_at IS NULL" if pending_only else "")
        return [self._comment(r) for r in self._db.execute(query + " ORDER BY id", (attempt_id,))]

    @staticmethod
    def _comment(row: sqlite3.Row) -> dict[str, Any]:
        return dict(row)
