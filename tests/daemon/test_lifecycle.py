"""Lifecycle.transition: check, write state + event in one transaction, then publish."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from kilod.domain import Attempt, Event, EventKind, State, Step
from kilod.errors import Conflict, NotFound
from kilod.events import EventLog
from kilod.lifecycle import Lifecycle
from kilod.store import Store


def committed_state(db_path: Path, attempt_id: str) -> str:
    """The state as another connection sees it: only what is committed."""
    with sqlite3.connect(db_path) as other:
        return str(other.execute("SELECT state FROM attempts WHERE id = ?", (attempt_id,)).fetchone()[0])


def test_transition_writes_state_and_event(store: Store, lifecycle: Lifecycle, attempt: Attempt) -> None:
    moved = lifecycle.transition(attempt.id, State.STARTING, step=Step.CONTAINER)
    assert moved.state == State.STARTING
    assert moved.step == Step.CONTAINER
    assert store.get_attempt(attempt.id) == moved
    last = store.events_of(attempt.id)[-1]
    assert last.seq == 2
    assert last.kind == EventKind.STATE
    assert last.payload == {"from": "queued", "to": "starting", "card_id": attempt.card_id}


def test_full_happy_path_and_timestamps(store: Store, lifecycle: Lifecycle, attempt: Attempt) -> None:
    assert attempt.started_at is None
    started = lifecycle.transition(attempt.id, State.STARTING)
    assert started.started_at is not None
    assert started.finished_at is None
    running = lifecycle.transition(attempt.id, State.RUNNING)
    assert running.started_at == started.started_at
    assert running.finished_at is None
    review = lifecycle.transition(attempt.id, State.REVIEW, summary="did it")
    assert review.finished_at is not None
    assert review.finished_at >= review.started_at  # type: ignore[operator]
    assert review.summary == "did it"
    approved = lifecycle.transition(attempt.id, State.APPROVED)
    assert approved.state == State.APPROVED

    moves = [(e.payload["from"], e.payload["to"]) for e in store.events_of(attempt.id)
             if e.kind == EventKind.STATE]
    assert moves == [(None, "queued"), ("queued", "starting"), ("starting", "running"),
                     ("running", "review"), ("review", "approved")]


@pytest.mark.parametrize("final", [State.FAILED, State.CANCELLED])
def test_ending_a_live_attempt_sets_finished_at(lifecycle: Lifecycle, attempt: Attempt, final: State) -> None:
    ended = lifecycle.transition(attempt.id, final)
    assert ended.state == final
    assert ended.finished_at is not None
    assert ended.started_at is None  # it never started


def test_explicit_timestamps_are_kept(lifecycle: Lifecycle, attempt: Attempt) -> None:
    assert lifecycle.transition(attempt.id, State.STARTING, started_at=10.0).started_at == 10.0
    assert lifecycle.transition(attempt.id, State.FAILED, finished_at=20.0).finished_at == 20.0


def test_error_goes_into_the_event(store: Store, lifecycle: Lifecycle, attempt: Attempt) -> None:
    failed = lifecycle.transition(attempt.id, State.FAILED, error="docker is gone")
    assert failed.error == "docker is gone"
    assert store.events_of(attempt.id)[-1].payload["error"] == "docker is gone"


def test_forbidden_move_writes_nothing(store: Store, lifecycle: Lifecycle, attempt: Attempt,
                                       db_path: Path) -> None:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    lifecycle.events._subscribers.add(queue)
    before_events = store.events_after(0)

    for target in (State.RUNNING, State.REVIEW, State.APPROVED, State.DISCARDED, State.QUEUED):
        with pytest.raises(Conflict):
            lifecycle.transition(attempt.id, target, summary="should not land", error="nor this")

    assert store.events_after(0) == before_events
    assert store.get_attempt(attempt.id) == attempt
    assert committed_state(db_path, attempt.id) == "queued"
    assert queue.empty()  # nothing published either


def test_review_can_go_back_to_running(store: Store, lifecycle: Lifecycle, attempt: Attempt) -> None:
    for target in (State.STARTING, State.RUNNING, State.REVIEW, State.RUNNING):
        lifecycle.transition(attempt.id, target)
    assert store.get_attempt(attempt.id).state == State.RUNNING
    assert store.events_of(attempt.id)[-1].payload == {
        "from": "review", "to": "running", "card_id": attempt.card_id}


def test_unknown_attempt(lifecycle: Lifecycle) -> None:
    with pytest.raises(NotFound):
        lifecycle.transition("ghost-1", State.STARTING)


async def test_published_only_after_commit(store: Store, event_log: EventLog, lifecycle: Lifecycle,
                                           attempt: Attempt, db_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    follower = event_log.follow(attempt.id)
    async with asyncio.timeout(10):
        first = await anext(follower)  # replayed "queued"; subscribed from here on
        assert first.payload["to"] == "queued"

        async def watch() -> None:
            async for event in follower:
                # another connection must already see what the event announces
                seen.append((event.payload["to"], committed_state(db_path, attempt.id)))
                if event.payload["to"] == "review":
                    return

        watcher = asyncio.create_task(watch())
        for number, target in enumerate((State.STARTING, State.RUNNING, State.REVIEW), start=1):
            lifecycle.transition(attempt.id, target)
            while len(seen) < number:  # let the watcher handle it before the next move
                await asyncio.sleep(0)
        await watcher
    assert seen == [("starting", "starting"), ("running", "running"), ("review", "review")]


class CommitCheckingQueue(asyncio.Queue[Event | None]):
    """A subscriber that looks at the database file at the very moment an event is published."""

    def __init__(self, db_path: Path) -> None:
        super().__init__()
        self.db_path = db_path
        self.at_publish: list[tuple[str, str, bool]] = []

    def put_nowait(self, item: Event | None) -> None:
        if item is not None:
            with sqlite3.connect(self.db_path) as other:
                row = other.execute("SELECT state FROM attempts WHERE id = ?", (item.attempt_id,)).fetchone()
                stored = other.execute("SELECT 1 FROM events WHERE id = ?", (item.id,)).fetchone()
            self.at_publish.append((str(item.payload.get("to")), str(row[0]), stored is not None))
        super().put_nowait(item)


def test_state_and_event_are_committed_when_published(event_log: EventLog, lifecycle: Lifecycle,
                                                       attempt: Attempt, db_path: Path) -> None:
    queue = CommitCheckingQueue(db_path)
    event_log._subscribers.add(queue)
    for target in (State.STARTING, State.RUNNING, State.CANCELLED):
        lifecycle.transition(attempt.id, target)
    assert queue.at_publish == [("starting", "starting", True), ("running", "running", True),
                                ("cancelled", "cancelled", True)]


def test_record_appends_and_publishes(store: Store, event_log: EventLog, lifecycle: Lifecycle,
                                      attempt: Attempt) -> None:
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    event_log._subscribers.add(queue)
    lifecycle.record(attempt.id, EventKind.TOOL_CALL, {"name": "shell"})
    published = queue.get_nowait()
    assert published == store.events_of(attempt.id)[-1]
    assert store.get_attempt(attempt.id).state == State.QUEUED


async def test_async_moves_are_checked_in_the_transaction_that_writes_them(
        store: Store, lifecycle: Lifecycle, attempt: Attempt) -> None:
    started = await lifecycle.transition_async(attempt.id, State.STARTING, step=Step.WORKTREE)
    assert started.state == State.STARTING and started.started_at is not None
    assert committed_state(store.path, attempt.id) == "starting"   # durable once it returned
    await lifecycle.transition_async(attempt.id, State.RUNNING)
    # a finish and a cancel asked at once: both are checked against the state the other wrote, so one is refused
    outcomes = await asyncio.gather(lifecycle.transition_async(attempt.id, State.REVIEW, summary="done"),
                                    lifecycle.transition_async(attempt.id, State.CANCELLED),
                                    return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    moved = [o for o in outcomes if isinstance(o, Attempt)]
    assert len(refused) == 1 and len(moved) == 1, outcomes
    final = store.get_attempt(attempt.id)
    assert final.state == moved[0].state and final.finished_at is not None
    moves = [(e.payload["from"], e.payload["to"]) for e in store.events_of(attempt.id) if e.kind == EventKind.STATE]
    assert moves == [(None, "queued"), ("queued", "starting"), ("starting", "running"), ("running", str(final.state))]
    with pytest.raises(NotFound):
        await lifecycle.transition_async("nope-1", State.STARTING)
