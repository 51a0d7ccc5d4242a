"""SQLite store: the one writer of what should exist.

`Store` is the tables' parts put together; each part is a module of its own:

- store_base.py     connections, `transaction()`, group commit through the writer thread
                    (store_writer.py), the event append every write shares
- store_schema.py   the migrations, in order
- store_rows.py     rows ↔ domain objects
- store_attempts.py cards and attempts, model calls, a person's pause
- store_board.py    batch reads for the board's projection
- store_events.py   the event log and the agent's conversation
- store_review.py   check results and review comments
- store_access.py   gateway tokens and trusted settings files

Callers import from here (`from kilod.store import Store`); SQL stays in these modules.
"""

from __future__ import annotations

from kilod.store_access import AccessTables
from kilod.store_attempts import AttemptTables
from kilod.store_board import BoardReads
from kilod.store_events import EventLog
from kilod.store_review import ReviewTables
from kilod.store_schema import MIGRATIONS

__all__ = ["MIGRATIONS", "Store"]


class Store(AttemptTables, BoardReads, EventLog, ReviewTables, AccessTables):
    """The store: open it with `Store(path)` (migrating it), `close()` it when done."""
