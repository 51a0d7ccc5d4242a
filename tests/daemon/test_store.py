"""The SQLite store on a real file: schema, atomic writes, event numbering, durability."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kilod.domain import EventKind, State, Step
from kilod.errors import NotFound
from kilod.store import MIGRATIONS, Store
from tests.daemon.records import make_attempts, make_card


def count(db_path: Path, table: str) -> int:
    """Row count through a separate connection: only committed data is visible."""
    with sqlite3.connect(db_path) as other:
        return int(other.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def tables(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as other:
        return {r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- schema ------------------------------------------------------------------


def test_migrations_set_user_version(store: Store, db_path: Path) -> None:
    assert store.schema_version == len(MIGRATIONS)
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert {"cards", "attempts", "events", "conversation"} <= tables(db_path)


def test_reopening_migrates_nothing_and_keeps_data(store: Store, db_path: Path) -> None:
    card = make_card()
    store.insert_card(card, make_attempts(card))
    store.close()
    reopened = Store(db_path)  # re-running migration 1 would fail: its tables exist
    try:
        assert reopened.schema_version == len(MIGRATIONS)
        assert reopened.get_card(card.id) == card
    finally:
        reopened.close()


def test_wal_and_full_sync(store: Store, db_path: Path) -> None:
    db = store._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    # WAL is a property of the file: another connection sees it too
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_read_on_another_thread_sees_a_commit_this_threads_query_predates(store: Store) -> None:
    card = make_card()
    store.insert_card(card, make_attempts(card, 2))
    attempt_id = f"{card.id}-1"
    under_way = store._db.execute("SELECT id FROM attempts")   # a query of this thread, one row in
    assert under_way.fetchone() is not None

    await store.update_attempt_async(attempt_id, state=State.STARTING)

    assert store.get_attempt(attempt_id).state == State.QUEUED   # inside this thread's snapshot
    assert (await asyncio.to_thread(store.get_attempt, attempt_id)).state == State.STARTING
    under_way.close()
    assert store.get_attempt(attempt_id).state == State.STARTING


def test_store_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "kilod.db"
    opened = Store(path)
    opened.close()
    assert path.is_file()


# -- cards and attempts -------------------------------------------------------


def test_insert_card_writes_card_attempts_and_first_events(store: Store, db_path: Path) -> None:
    card = make_card()
    attempts = make_attempts(card, 3)
    events = store.insert_card(card, attempts)

    assert store.get_card(card.id) == card
    assert store.attempts_of(card.id) == attempts
    assert [e.attempt_id for e in events] == [a.id for a in attempts]
    for event in events:
        assert event.seq == 1
        assert event.kind == EventKind.STATE
        assert event.payload == {"from": None, "to": "queued", "card_id": card.id}
        assert store.events_of(event.attempt_id) == [event]
    assert (count(db_path, "cards"), count(db_path, "attempts"), count(db_path, "events")) == (1, 3, 3)


def test_failing_insert_leaves_nothing_behind(store: Store, db_path: Path) -> None:
    card = make_card()
    first, second = make_attempts(card, 2)
    second.id = first.id  # duplicate primary key: the second attempt's insert fails
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_card(card, [first, second])

    assert (count(db_path, "cards"), count(db_path, "attempts"), count(db_path, "events")) == (0, 0, 0)
    with pytest.raises(NotFound):
        store.get_card(card.id)
    assert store.events_after(0) == []
    # the connection is usable afterwards (the transaction was rolled back, not left open)
    store.insert_card(card, make_attempts(card, 1))
    assert count(db_path, "attempts") == 1


def test_duplicate_card_is_refused_whole(store: Store, db_path: Path) -> None:
    card = make_card()
    store.insert_card(card, make_attempts(card, 1))
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_card(card, make_attempts(card, 2))
    assert (count(db_path, "cards"), count(db_path, "attempts"), count(db_path, "events")) == (1, 1, 1)


def test_missing_things_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no card 'nope'"):
        store.get_card("nope")
    with pytest.raises(NotFound, match="no attempt 'nope-1'"):
        store.get_attempt("nope-1")


def test_update_attempt_changes_fields_and_logs_in_one_go(store: Store) -> None:
    card = make_card()
    (attempt,) = make_attempts(card)
    store.insert_card(card, [attempt])
    event = store.update_attempt(attempt.id, (EventKind.LOG, {"message": "hi"}),
                                 state=State.STARTING, step=Step.CONTAINER, tokens_in=7, error="e")
    updated = store.get_attempt(attempt.id)
    assert (updated.state, updated.step, updated.tokens_in, updated.error) == (
        State.STARTING, Step.CONTAINER, 7, "e")
    assert isinstance(updated.state, State) and isinstance(updated.step, Step)
    assert event is not None and event.seq == 2 and event.payload == {"message": "hi"}
    assert store.update_attempt(attempt.id, tokens_out=3) is None
    assert store.get_attempt(attempt.id).tokens_out == 3
    assert len(store.events_of(attempt.id)) == 2


@pytest.mark.parametrize("field", ["id", "card_id", "branch", "worktree", "model", "bogus"])
def test_update_attempt_rejects_unknown_fields(store: Store, field: str) -> None:
    card = make_card()
    (attempt,) = make_attempts(card)
    store.insert_card(card, [attempt])
    with pytest.raises(ValueError, match=field):
        store.update_attempt(attempt.id, (EventKind.LOG, {"m": 1}), state=State.STARTING, **{field: "x"})
    assert store.get_attempt(attempt.id) == attempt
    assert len(store.events_of(attempt.id)) == 1  # the event was not written either


def test_attempts_in_filters_by_state_in_creation_order(store: Store) -> None:
    card = make_card()
    attempts = make_attempts(card, 3)
    store.insert_card(card, attempts)
    store.update_attempt(attempts[1].id, state=State.RUNNING)
    assert [a.id for a in store.attempts_in(State.QUEUED)] == [attempts[0].id, attempts[2].id]
    assert [a.id for a in store.attempts_in(State.RUNNING, State.REVIEW)] == [attempts[1].id]
    assert [a.id for a in store.all_attempts()] == [a.id for a in attempts]


def test_a_pause_request_is_stored_only_while_the_agent_is_at_work(store: Store, db_path: Path) -> None:
    card = make_card()
    working, queued = make_attempts(card, 2)
    store.insert_card(card, [working, queued])
    store.update_attempt(working.id, state=State.RUNNING, step=Step.AGENT)
    assert store.request_pause(queued.id, {"message": "pause"}) is None  # not at work: nothing marked or logged
    assert not store.pause_requested(queued.id) and len(store.events_of(queued.id)) == 1

    event = store.request_pause(working.id, {"message": "pause"})
    assert event is not None and event.kind == EventKind.LOG and event.payload == {"message": "pause"}
    reopened = Store(db_path)  # committed: what a daemon started after a kill -9 reads
    try:
        assert reopened.pause_requested(working.id) and not reopened.pause_requested("nope-1")
        # the agent step's next move clears it in the same transaction
        reopened.update_attempt(working.id, state=State.PAUSED, pause_requested=False)
        assert not reopened.pause_requested(working.id)
        assert reopened.request_pause(working.id, {"message": "again"}) is None  # paused: not at work
    finally:
        reopened.close()


# -- events ------------------------------------------------------------------


def test_events_are_numbered_per_attempt(store: Store) -> None:
    card = make_card()
    one, two = make_attempts(card, 2)
    store.insert_card(card, [one, two])
    for i in range(5):
        store.append_event(one.id, EventKind.LOG, {"i": i})
        if i % 2 == 0:
            store.append_event(two.id, EventKind.TOOL_CALL, {"i": i})

    assert [e.seq for e in store.events_of(one.id)] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in store.events_of(two.id)] == [1, 2, 3, 4]
    assert [e.payload.get("i") for e in store.events_of(one.id)] == [None, 0, 1, 2, 3, 4]
    assert [e.seq for e in store.events_of(one.id, after_seq=4)] == [5, 6]
    assert [e.seq for e in store.events_of(one.id, after_seq=1, limit=2)] == [2, 3]
    assert store.events_of(one.id, after_seq=6) == []


def test_events_after_orders_by_global_id(store: Store) -> None:
    card = make_card()
    one, two = make_attempts(card, 2)
    store.insert_card(card, [one, two])
    written = [
        store.append_event(one.id, EventKind.LOG, {"n": 1}),
        store.append_event(two.id, EventKind.LOG, {"n": 2}),
        store.append_event(one.id, EventKind.MESSAGE, {"n": 3}),
    ]
    everything = store.events_after(0)
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    assert len({e.id for e in everything}) == 5
    assert everything[-3:] == written
    assert store.events_after(written[0].id) == written[1:]
    assert store.events_after(0, limit=2) == everything[:2]
    assert store.last_event_id() == written[-1].id


def test_event_for_unknown_attempt_is_refused(store: Store, db_path: Path) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.append_event("ghost-1", EventKind.LOG, {})
    assert count(db_path, "events") == 0


def test_last_event_id_of_empty_store(store: Store) -> None:
    assert store.last_event_id() == 0


# -- conversation ----------------------------------------------------------------


def test_conversation_round_trip(store: Store) -> None:
    card = make_card()
    one, two = make_attempts(card, 2)
    store.insert_card(card, [one, two])
    first = [{"role": "system", "content": "s"}, {"role": "user", "content": "ünïcode ✓"}]
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "x", "arguments": "{}"}}]}
    store.append_messages(one.id, 0, first)
    store.append_messages(one.id, 2, [call], steps=1, tokens_in=10, tokens_out=2, cost_usd=0.5)
    store.append_messages(two.id, 0, [{"role": "user", "content": "other"}])

    assert store.conversation(one.id) == [*first, call]
    assert store.conversation(two.id) == [{"role": "user", "content": "other"}]
    assert store.conversation("ghost-1") == []
    stored = store.get_attempt(one.id)
    assert (stored.steps, stored.tokens_in, stored.tokens_out, stored.cost_usd) == (1, 10, 2, 0.5)


def test_conversation_index_is_never_overwritten(store: Store) -> None:
    card = make_card()
    (attempt,) = make_attempts(card)
    store.insert_card(card, [attempt])
    store.append_messages(attempt.id, 0, [{"role": "user", "content": "a"}])
    with pytest.raises(sqlite3.IntegrityError):
        store.append_messages(attempt.id, 0, [{"role": "user", "content": "b"}], steps=9)
    assert store.conversation(attempt.id) == [{"role": "user", "content": "a"}]
    assert store.get_attempt(attempt.id).steps == 0  # the counters were rolled back with it


def test_comments_are_marked_sent_with_the_message_that_carries_them(store: Store) -> None:
    card = make_card()
    (attempt,) = make_attempts(card)
    store.insert_card(card, [attempt])
    first = store.add_comment(attempt.id, "greeter.py", 2, "use an f-string")
    second = store.add_comment(attempt.id, "README.md", 1, "typo")
    assert [c["id"] for c in store.comments(attempt.id, pending_only=True)] == [first["id"], second["id"]]
    assert (first["path"], first["line"], first["text"], first["sent_at"]) == (
        "greeter.py", 2, "use an f-string", None)

    store.update_attempt(attempt.id, message={"role": "user", "content": "please fix"},
                         sent_comments=[first["id"]])
    assert [c["id"] for c in store.comments(attempt.id, pending_only=True)] == [second["id"]]
    assert len(store.comments(attempt.id)) == 2
    assert store.conversation(attempt.id) == [{"role": "user", "content": "please fix"}]

    # a failing write (the message names no attempt) marks nothing as sent
    with pytest.raises(sqlite3.IntegrityError):
        store.update_attempt("no-such-attempt", message={"role": "user", "content": "again"},
                             sent_comments=[second["id"]])
    assert [c["id"] for c in store.comments(attempt.id, pending_only=True)] == [second["id"]]


# -- durability ------------------------------------------------------------------


def test_everything_survives_closing_and_reopening(store: Store, db_path: Path) -> None:
    card = make_card()
    attempts = make_attempts(card, 2)
    store.insert_card(card, attempts)
    store.update_attempt(attempts[0].id, (EventKind.STATE, {"from": "queued", "to": "starting"}),
                         state=State.STARTING, started_at=123.5)
    store.append_messages(attempts[0].id, 0, [{"role": "user", "content": "hello"}])
    events = store.events_after(0)
    store.close()

    reopened = Store(db_path)
    try:
        assert reopened.get_card(card.id) == card
        assert reopened.get_attempt(attempts[0].id).state == State.STARTING
        assert reopened.get_attempt(attempts[0].id).started_at == 123.5
        assert reopened.get_attempt(attempts[1].id) == attempts[1]
        assert reopened.events_after(0) == events
        assert reopened.conversation(attempts[0].id) == [{"role": "user", "content": "hello"}]
        # numbering carries on after the restart
        assert reopened.append_event(attempts[0].id, EventKind.LOG, {}).seq == 3
    finally:
        reopened.close()


def test_list_cards_in_creation_order(store: Store) -> None:
    cards = [make_card(f"card000{i}") for i in range(3)]
    for card in reversed(cards):
        store.insert_card(card, make_attempts(card))
    assert [c.id for c in store.list_cards()] == ["card0000", "card0001", "card0002"]
