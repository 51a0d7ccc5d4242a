"""SQLite store: the one writer of what should exist.

WAL, `synchronous=FULL`; every write is a short `BEGIN IMMEDIATE` transaction and
nothing is held across a Docker, git or model call. The schema is versioned by
`PRAGMA user_version`; migrations only ever append.

Two connections. Reads use their own, so they never wait for a commit. Writes use
the write connection under one lock: the `…_async` methods hand their work to the
writer thread (`GroupWriter`), which commits everything queued meanwhile, from many
attempts, in one transaction with one fsync, and only then resolves the callers, so
an event is durable before anyone can publish it (kill -9 safety unchanged). The
sync methods take the same lock on the caller's thread: for cold paths and tests.
After each commit the `listeners` are told which attempts changed (the board's
projection keeps itself current that way).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from kilod.diskspace import DiskFull, is_disk_full
from kilod.domain import Attempt, Card, Event, EventKind, State, Step, now
from kilod.errors import NotFound
from kilod.store_writer import GroupWriter

MIGRATIONS: list[str] = [
    # 1: cards, attempts, their event log and the agent conversation
    """
    CREATE TABLE cards (
        id          TEXT PRIMARY KEY,
        title       TEXT NOT NULL,
        prompt      TEXT NOT NULL,
        repo        TEXT NOT NULL,
        base_ref    TEXT NOT NULL,
        base_commit TEXT NOT NULL,
        network     INTEGER NOT NULL,
        created_at  REAL NOT NULL
    );
    CREATE TABLE attempts (
        id           TEXT PRIMARY KEY,
        card_id      TEXT NOT NULL REFERENCES cards(id),
        n            INTEGER NOT NULL,
        model        TEXT NOT NULL,
        runtime      TEXT NOT NULL,
        branch       TEXT NOT NULL,
        worktree     TEXT NOT NULL,
        container_id TEXT,
        state        TEXT NOT NULL,
        step         TEXT NOT NULL,
        error        TEXT,
        summary      TEXT,
        tokens_in    INTEGER NOT NULL DEFAULT 0,
        tokens_out   INTEGER NOT NULL DEFAULT 0,
        cost_usd     REAL,
        steps        INTEGER NOT NULL DEFAULT 0,
        tool_calls   INTEGER NOT NULL DEFAULT 0,
        created_at   REAL NOT NULL,
        started_at   REAL,
        finished_at  REAL,
        UNIQUE (card_id, n)
    );
    CREATE INDEX attempts_state ON attempts(state, created_at);
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        attempt_id TEXT NOT NULL REFERENCES attempts(id),
        seq        INTEGER NOT NULL,
        time       REAL NOT NULL,
        kind       TEXT NOT NULL,
        payload    TEXT NOT NULL,
        UNIQUE (attempt_id, seq)
    );
    CREATE TABLE conversation (
        attempt_id TEXT NOT NULL REFERENCES attempts(id),
        idx        INTEGER NOT NULL,
        message    TEXT NOT NULL,
        PRIMARY KEY (attempt_id, idx)
    );
    """,
    # 2: review: the branch to merge into, the tree the agent left, what landed, review comments
    """
    ALTER TABLE cards ADD COLUMN base_branch TEXT;
    ALTER TABLE attempts ADD COLUMN review_tree TEXT;
    ALTER TABLE attempts ADD COLUMN landed_commit TEXT;
    CREATE TABLE comments (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        attempt_id TEXT NOT NULL REFERENCES attempts(id),
        path       TEXT NOT NULL,
        line       INTEGER NOT NULL,
        text       TEXT NOT NULL,
        created_at REAL NOT NULL,
        sent_at    REAL
    );
    """,
    # 3: repository settings and budgets per card, checks per attempt run
    """
    ALTER TABLE cards ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE cards ADD COLUMN budget_tokens INTEGER;
    ALTER TABLE cards ADD COLUMN budget_cost_usd REAL;
    ALTER TABLE attempts ADD COLUMN stop_reason TEXT;
    ALTER TABLE attempts ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE checks (
        attempt_id  TEXT NOT NULL REFERENCES attempts(id),
        run         INTEGER NOT NULL,
        idx         INTEGER NOT NULL,
        name        TEXT NOT NULL,
        command     TEXT NOT NULL,
        status      TEXT NOT NULL,
        exit_code   INTEGER,
        duration    REAL NOT NULL,
        output_tail TEXT NOT NULL,
        finished_at REAL NOT NULL,
        PRIMARY KEY (attempt_id, run, idx)
    );
    """,
    # 4: model gateway: one token per attempt (only its sha256) and the agent it was issued to
    """
    CREATE TABLE gateway_tokens (
        attempt_id   TEXT PRIMARY KEY REFERENCES attempts(id),
        token_sha256 TEXT NOT NULL UNIQUE,
        agent        TEXT NOT NULL,
        created_at   REAL NOT NULL
    );
    """,
    # 5: which agent runs the attempt: kilod's own loop or an agent CLI (kilod.agents)
    """
    ALTER TABLE attempts ADD COLUMN agent TEXT NOT NULL DEFAULT 'builtin';
    """,
    # 6: trust in a repository's settings file (by content hash), and what each card made of that file
    """
    ALTER TABLE cards ADD COLUMN settings_source TEXT;
    CREATE TABLE trusted_settings (
        repo       TEXT NOT NULL,
        file       TEXT NOT NULL,
        sha256     TEXT NOT NULL,
        trusted_at REAL NOT NULL,
        PRIMARY KEY (repo, file, sha256)
    );
    """,
    # 7: input tokens the provider served from its prompt cache (built-in agent; gateway cache reads)
    """
    ALTER TABLE attempts ADD COLUMN tokens_cached INTEGER NOT NULL DEFAULT 0;
    """,
    # 8: the board: archived cards; per-run summaries and time waited in review (not running time)
    """
    ALTER TABLE cards ADD COLUMN archived_at REAL;
    ALTER TABLE attempts ADD COLUMN review_seconds REAL NOT NULL DEFAULT 0;
    ALTER TABLE attempts ADD COLUMN summaries TEXT NOT NULL DEFAULT '[]';
    """,
    # 9: a person's pause request, until the agent reaches a stopping point (it survives kill -9)
    """
    ALTER TABLE attempts ADD COLUMN pause_requested INTEGER NOT NULL DEFAULT 0;
    """,
]

_ATTEMPT_COLUMNS = (
    "id, card_id, n, model, runtime, branch, worktree, container_id, state, step, error, summary, "
    "tokens_in, tokens_out, cost_usd, steps, tool_calls, created_at, started_at, finished_at, "
    "review_tree, landed_commit, stop_reason, run, agent, tokens_cached, review_seconds, summaries"
)
_UPDATABLE = frozenset(
    {
        "container_id", "state", "step", "error", "summary", "tokens_in", "tokens_out", "cost_usd",
        "steps", "tool_calls", "started_at", "finished_at", "review_tree", "landed_commit", "stop_reason", "run",
        "tokens_cached", "review_seconds", "summaries", "pause_requested",
    }
)


def _check_updatable(fields: dict[str, Any]) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")


T = TypeVar("T")

# ids per `IN (…)` of a batch read: well under SQLite's limit of bound variables
_IN_CHUNK = 500


def _chunks(ids: Collection[str]) -> Iterator[tuple[list[str], str]]:
    """The ids in chunks, each with its `?, ?, …` marks."""
    ordered = list(ids)
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start:start + _IN_CHUNK]
        yield chunk, ", ".join("?" * len(chunk))


def _set_fields(db: sqlite3.Connection, attempt_id: str, fields: dict[str, Any]) -> None:
    """UPDATE the attempt's columns named in `fields` (already checked), inside the caller's transaction."""
    if fields:
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [str(v) if isinstance(v, (State, Step)) else json.dumps(v) if isinstance(v, list) else v
                  for v in fields.values()]
        db.execute(f"UPDATE attempts SET {sets} WHERE id = ?", [*values, attempt_id])


def _card(row: sqlite3.Row) -> Card:
    return Card(
        id=row["id"], title=row["title"], prompt=row["prompt"], repo=row["repo"],
        base_ref=row["base_ref"], base_commit=row["base_commit"], network=bool(row["network"]),
        created_at=row["created_at"], base_branch=row["base_branch"], settings=json.loads(row["settings"]),
        budget_tokens=row["budget_tokens"], budget_cost_usd=row["budget_cost_usd"], archived_at=row["archived_at"],
        settings_source=json.loads(row["settings_source"]) if row["settings_source"] else None,
    )


def _attempt(row: sqlite3.Row) -> Attempt:
    values = dict(row)
    values["state"] = State(values["state"])
    values["step"] = Step(values["step"])
    values["summaries"] = json.loads(values["summaries"])
    return Attempt(**values)


def _event(row: sqlite3.Row) -> Event:
    return Event(
        id=row["id"], attempt_id=row["attempt_id"], seq=row["seq"], time=row["time"],
        kind=EventKind(row["kind"]), payload=json.loads(row["payload"]),
    )


class Store:
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
        self._db = self._connect(path)  # reads: never behind the writer's lock
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

    def close(self) -> None:
        self._writer.stop()
        self._db.close()
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

    # -- cards and attempts -------------------------------------------------

    def insert_card(self, card: Card, attempts: list[Attempt]) -> list[Event]:
        """Write a card, its attempts and each attempt's first state event, all or nothing."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO cards (id, title, prompt, repo, base_ref, base_commit, network, created_at, base_branch,"
                " settings, budget_tokens, budget_cost_usd, settings_source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (card.id, card.title, card.prompt, card.repo, card.base_ref, card.base_commit,
                 int(card.network), card.created_at, card.base_branch, json.dumps(card.settings),
                 card.budget_tokens, card.budget_cost_usd,
                 None if card.settings_source is None else json.dumps(card.settings_source)),
            )
            return self._insert_attempts(db, attempts)

    def add_attempts(self, attempts: list[Attempt]) -> list[Event]:
        """More attempts on an existing card (retry), with their first state events."""
        with self.transaction() as db:
            return self._insert_attempts(db, attempts)

    def _insert_attempts(self, db: sqlite3.Connection, attempts: list[Attempt]) -> list[Event]:
        events = []
        for a in attempts:
            self._touched.add(a.id)
            db.execute(
                f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}) VALUES ({', '.join('?' * 28)})",
                (a.id, a.card_id, a.n, a.model, a.runtime, a.branch, a.worktree, a.container_id,
                 str(a.state), str(a.step), a.error, a.summary, a.tokens_in, a.tokens_out,
                 a.cost_usd, a.steps, a.tool_calls, a.created_at, a.started_at, a.finished_at,
                 a.review_tree, a.landed_commit, a.stop_reason, a.run, a.agent, a.tokens_cached,
                 a.review_seconds, json.dumps(a.summaries)),
            )
            events.append(self._append_event(
                db, a.id, EventKind.STATE, {"from": None, "to": str(a.state), "card_id": a.card_id}
            ))
        return events

    def get_card(self, card_id: str) -> Card:
        row = self._db.execute("SELECT * FROM cards WHERE id = ?", (card_id,)).fetchone()
        if row is None:
            raise NotFound(f"no card '{card_id}'")
        return _card(row)

    def list_cards(self) -> list[Card]:
        return [_card(r) for r in self._db.execute("SELECT * FROM cards ORDER BY created_at, id")]

    def _touch_card(self, db: sqlite3.Connection, card_id: str) -> None:
        """A change to the card itself: its attempts are what the listeners (the board) are told of."""
        self._touched.update(r[0] for r in db.execute("SELECT id FROM attempts WHERE card_id = ?", (card_id,)))

    def set_archived(self, card_id: str, archived_at: float | None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE cards SET archived_at = ? WHERE id = ?", (archived_at, card_id))
            self._touch_card(db, card_id)

    def delete_card(self, card_id: str) -> None:
        """Remove a card and everything stored about its attempts, all or nothing."""
        with self.transaction() as db:
            self._touch_card(db, card_id)
            attempts = "SELECT id FROM attempts WHERE card_id = ?"
            for table in ("checks", "comments", "conversation", "events"):
                db.execute(f"DELETE FROM {table} WHERE attempt_id IN ({attempts})", (card_id,))
            db.execute("DELETE FROM attempts WHERE card_id = ?", (card_id,))
            db.execute("DELETE FROM cards WHERE id = ?", (card_id,))

    # Batch reads for the board's projection: a refresh after 20 attempts moved is a few
    # queries, not three per card (each query lets go of the GIL, and under load getting
    # it back is what costs the event loop, not the query).

    def cards_by_id(self, card_ids: Collection[str]) -> dict[str, Card]:
        """The cards there are of `card_ids` (a deleted one is missing)."""
        cards: dict[str, Card] = {}
        for chunk, marks in _chunks(card_ids):
            cards.update((r["id"], _card(r)) for r in self._db.execute(
                f"SELECT * FROM cards WHERE id IN ({marks})", chunk))
        return cards

    def attempts_of_cards(self, card_ids: Collection[str]) -> dict[str, list[Attempt]]:
        """Each card's attempts, by n (a card without any is missing)."""
        attempts: dict[str, list[Attempt]] = {}
        for chunk, marks in _chunks(card_ids):
            for row in self._db.execute(f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE card_id IN ({marks})"
                                        " ORDER BY card_id, n", chunk):
                attempts.setdefault(row["card_id"], []).append(_attempt(row))
        return attempts

    def card_ids_of(self, attempt_ids: Collection[str]) -> dict[str, str]:
        """attempt id → card id, for those of `attempt_ids` that exist."""
        found: dict[str, str] = {}
        for chunk, marks in _chunks(attempt_ids):
            found.update((r[0], r[1]) for r in self._db.execute(
                f"SELECT id, card_id FROM attempts WHERE id IN ({marks})", chunk))
        return found

    def latest_checks(self, attempt_ids: Collection[str]) -> dict[str, list[dict[str, Any]]]:
        """`checks_of(a)` for each of `attempt_ids` that has checks: the latest run's, by index."""
        checks: dict[str, list[dict[str, Any]]] = {}
        for chunk, marks in _chunks(attempt_ids):
            rows = self._db.execute(
                "SELECT c.* FROM checks c JOIN (SELECT attempt_id, MAX(run) AS run FROM checks"
                f" WHERE attempt_id IN ({marks}) GROUP BY attempt_id) latest"
                " ON c.attempt_id = latest.attempt_id AND c.run = latest.run ORDER BY c.attempt_id, c.idx", chunk)
            for row in rows:
                checks.setdefault(row["attempt_id"], []).append(dict(row))
        return checks

    def get_attempt(self, attempt_id: str) -> Attempt:
        row = self._db.execute(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE id = ?", (attempt_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no attempt '{attempt_id}'")
        return _attempt(row)

    def attempts_of(self, card_id: str) -> list[Attempt]:
        rows = self._db.execute(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE card_id = ? ORDER BY n", (card_id,)
        )
        return [_attempt(r) for r in rows]

    def all_attempts(self) -> list[Attempt]:
        rows = self._db.execute(f"SELECT {_ATTEMPT_COLUMNS} FROM attempts ORDER BY created_at, n")
        return [_attempt(r) for r in rows]

    def attempts_in(self, *states: State) -> list[Attempt]:
        marks = ", ".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE state IN ({marks}) ORDER BY created_at, n",
            [str(s) for s in states],
        )
        return [_attempt(r) for r in rows]

    def update_attempt(self, attempt_id: str, event: tuple[EventKind, dict[str, Any]] | None = None,
                       message: dict[str, Any] | None = None, sent_comments: list[int] | None = None,
                       **fields: Any) -> Event | None:
        """Update some fields of an attempt and, in the same transaction, log an event.

        `message` is appended to the conversation and `sent_comments` marked sent in
        that transaction too: a follow-up is all there or not there after a crash.
        """
        _check_updatable(fields)
        with self.transaction() as db:
            return self._update_attempt(db, attempt_id, event, message, sent_comments, fields)

    async def update_attempt_async(self, attempt_id: str, event: tuple[EventKind, dict[str, Any]] | None = None,
                                   message: dict[str, Any] | None = None, **fields: Any) -> Event | None:
        """`update_attempt` through the writer thread's group commit."""
        _check_updatable(fields)
        return await self._write(partial(self._update_attempt, attempt_id=attempt_id, event=event, message=message,
                                         sent_comments=None, fields=fields))

    def _update_attempt(self, db: sqlite3.Connection, attempt_id: str, event: tuple[EventKind, dict[str, Any]] | None,
                        message: dict[str, Any] | None, sent_comments: list[int] | None,
                        fields: dict[str, Any]) -> Event | None:
        self._touched.add(attempt_id)
        if message is not None:
            index = db.execute("SELECT COUNT(*) FROM conversation WHERE attempt_id = ?",
                               (attempt_id,)).fetchone()[0]
            db.execute("INSERT INTO conversation (attempt_id, idx, message) VALUES (?, ?, ?)",
                       (attempt_id, index, json.dumps(message)))
        for comment_id in sent_comments or []:
            db.execute("UPDATE comments SET sent_at = ? WHERE id = ?", (now(), comment_id))
        _set_fields(db, attempt_id, fields)
        if event is not None:
            return self._append_event(db, attempt_id, event[0], event[1])
        return None

    def add_model_call(self, attempt_id: str, tokens_in: int, tokens_out: int, cost_usd: float | None,
                       event: tuple[EventKind, dict[str, Any]], tokens_cached: int = 0) -> Event:
        """Count one model call made through the gateway (steps + 1, tokens, cost) and log it, atomically.

        `tokens_cached`: of `tokens_in`, those read from the provider's prompt cache (as the built-in agent counts).

        Increments happen in SQL, so concurrent calls of one attempt never lose a count.
        """
        with self.transaction() as db:
            return self._add_model_call(db, attempt_id, tokens_in, tokens_out, cost_usd, event, tokens_cached)

    async def add_model_call_async(self, attempt_id: str, tokens_in: int, tokens_out: int, cost_usd: float | None,
                                   event: tuple[EventKind, dict[str, Any]], tokens_cached: int = 0) -> Event:
        """`add_model_call` through the writer thread's group commit (the event loop never waits on an fsync)."""
        return await self._write(lambda db: self._add_model_call(db, attempt_id, tokens_in, tokens_out, cost_usd,
                                                                 event, tokens_cached))

    def _add_model_call(self, db: sqlite3.Connection, attempt_id: str, tokens_in: int, tokens_out: int,
                        cost_usd: float | None, event: tuple[EventKind, dict[str, Any]], tokens_cached: int) -> Event:
        db.execute(
            "UPDATE attempts SET steps = steps + 1, tokens_in = tokens_in + ?, tokens_out = tokens_out + ?,"
            " tokens_cached = tokens_cached + ?,"
            " cost_usd = CASE WHEN ? IS NULL THEN cost_usd ELSE COALESCE(cost_usd, 0) + ? END WHERE id = ?",
            (tokens_in, tokens_out, tokens_cached, cost_usd, cost_usd, attempt_id),
        )
        return self._append_event(db, attempt_id, event[0], {**event[1], "step": self._steps(db, attempt_id)})

    @staticmethod
    def _steps(db: sqlite3.Connection, attempt_id: str) -> int:
        return int(db.execute("SELECT steps FROM attempts WHERE id = ?", (attempt_id,)).fetchone()[0])

    # -- a person's pause ------------------------------------------------------

    def request_pause(self, attempt_id: str, payload: dict[str, Any]) -> Event | None:
        """Mark a running agent as asked to pause and log `payload`, in one transaction; None if it is not at work.

        The guard is in the UPDATE itself: a move out of the agent step committed meanwhile (which
        clears the mark) makes this a no-op instead of leaving a mark for a later run to trip on.
        """
        with self.transaction() as db:
            marked = db.execute("UPDATE attempts SET pause_requested = 1 WHERE id = ? AND state = ? AND step = ?",
                                (attempt_id, str(State.RUNNING), str(Step.AGENT))).rowcount
            if not marked:
                return None
            self._touched.add(attempt_id)
            return self._append_event(db, attempt_id, EventKind.LOG, payload)

    def pause_requested(self, attempt_id: str) -> bool:
        row = self._db.execute("SELECT pause_requested FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
        return bool(row is not None and row[0])

    # -- model gateway tokens ---------------------------------------------------

    def set_gateway_token(self, attempt_id: str, token_sha256: str, agent: str) -> None:
        """Store (replacing any earlier one) the hash of an attempt's gateway token."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO gateway_tokens (attempt_id, token_sha256, agent, created_at)"
                       " VALUES (?, ?, ?, ?)", (attempt_id, token_sha256, agent, now()))

    def gateway_token_owner(self, token_sha256: str) -> tuple[str, str] | None:
        """(attempt id, agent) the token hash was issued to, or None."""
        row = self._db.execute("SELECT attempt_id, agent FROM gateway_tokens WHERE token_sha256 = ?",
                               (token_sha256,)).fetchone()
        return (row["attempt_id"], row["agent"]) if row is not None else None

    def delete_gateway_token(self, attempt_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM gateway_tokens WHERE attempt_id = ?", (attempt_id,))

    # -- events ------------------------------------------------------------

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

    def append_event(self, attempt_id: str, kind: EventKind, payload: dict[str, Any]) -> Event:
        with self.transaction() as db:
            return self._append_event(db, attempt_id, kind, payload)

    async def append_event_async(self, attempt_id: str, kind: EventKind, payload: dict[str, Any]) -> Event:
        return await self._write(lambda db: self._append_event(db, attempt_id, kind, payload))

    def events_of(self, attempt_id: str, after_seq: int = 0, limit: int = 10_000) -> list[Event]:
        rows = self._db.execute(
            "SELECT * FROM events WHERE attempt_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (attempt_id, after_seq, limit),
        )
        return [_event(r) for r in rows]

    def events_after(self, after_id: int = 0, limit: int = 10_000) -> list[Event]:
        rows = self._db.execute("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [_event(r) for r in rows]

    def last_seq(self, attempt_id: str) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE attempt_id = ?", (attempt_id,))
        return int(row.fetchone()[0])

    def last_event_id(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])

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

    # -- trusted repository settings -------------------------------------------

    def trust_settings(self, repo: str, file: str, sha256: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO trusted_settings (repo, file, sha256, trusted_at) VALUES (?, ?, ?, ?)",
                       (repo, file, sha256, now()))

    def is_trusted(self, repo: str, file: str, sha256: str) -> bool:
        row = self._db.execute("SELECT 1 FROM trusted_settings WHERE repo = ? AND file = ? AND sha256 = ?",
                               (repo, file, sha256)).fetchone()
        return row is not None

    def trusted_hashes(self, repo: str, file: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT sha256, trusted_at FROM trusted_settings WHERE repo = ? AND file = ?"
                                " ORDER BY trusted_at", (repo, file))
        return [dict(r) for r in rows]

    def revoke_trust(self, repo: str, file: str) -> int:
        with self.transaction() as db:
            return db.execute("DELETE FROM trusted_settings WHERE repo = ? AND file = ?", (repo, file)).rowcount

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

    # -- conversation ------------------------------------------------------

    def conversation(self, attempt_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT message FROM conversation WHERE attempt_id = ? ORDER BY idx", (attempt_id,)
        )
        return [json.loads(r["message"]) for r in rows]

    def append_messages(self, attempt_id: str, start: int, messages: list[dict[str, Any]],
                        event: tuple[EventKind, dict[str, Any]] | None = None, **attempt_fields: Any) -> Event | None:
        """Append messages at index `start` (and update counters, and log `event`) in one transaction.

        A tool's result and the event that shows it are there together or not at all.
        """
        _check_updatable(attempt_fields)
        with self.transaction() as db:
            return self._append_messages(db, attempt_id, start, messages, event, attempt_fields)

    async def append_messages_async(self, attempt_id: str, start: int, messages: list[dict[str, Any]],
                                    event: tuple[EventKind, dict[str, Any]] | None = None,
                                    **attempt_fields: Any) -> Event | None:
        """`append_messages` through the writer thread's group commit."""
        _check_updatable(attempt_fields)
        return await self._write(
            lambda db: self._append_messages(db, attempt_id, start, messages, event, attempt_fields))

    def _append_messages(self, db: sqlite3.Connection, attempt_id: str, start: int,
                         messages: list[dict[str, Any]], event: tuple[EventKind, dict[str, Any]] | None,
                         attempt_fields: dict[str, Any]) -> Event | None:
        self._touched.add(attempt_id)
        for offset, message in enumerate(messages):
            db.execute(
                "INSERT INTO conversation (attempt_id, idx, message) VALUES (?, ?, ?)",
                (attempt_id, start + offset, json.dumps(message)),
            )
        _set_fields(db, attempt_id, attempt_fields)
        if event is not None:
            return self._append_event(db, attempt_id, event[0], event[1])
        return None
