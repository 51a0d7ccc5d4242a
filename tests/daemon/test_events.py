"""EventLog.follow: replay from a position, then follow live; never miss, never repeat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

from kilod.domain import Attempt, Event, EventKind
from kilod.events import EventLog
from kilod.lifecycle import Lifecycle
from kilod.store import Store
from tests.daemon.records import make_attempts, make_card

# Guards against a hang only; nothing asserts on time.
GUARD = 10.0


def setup_attempts(store: Store, count: int = 2) -> list[Attempt]:
    card = make_card()
    attempts = make_attempts(card, count)
    store.insert_card(card, attempts)
    return attempts


async def take(follower: AsyncIterator[Event], n: int) -> list[Event]:
    out = []
    async with asyncio.timeout(GUARD):
        for _ in range(n):
            out.append(await anext(follower))
    return out


async def drain(follower: AsyncIterator[Event]) -> list[Event]:
    async with asyncio.timeout(GUARD):
        return [e async for e in follower]


async def test_replays_then_follows_live(store: Store, event_log: EventLog, lifecycle: Lifecycle) -> None:
    (attempt,) = setup_attempts(store, 1)
    for i in range(3):
        store.append_event(attempt.id, EventKind.LOG, {"i": i})
    follower = event_log.follow(attempt.id)

    replayed = await take(follower, 4)
    assert [e.seq for e in replayed] == [1, 2, 3, 4]
    assert replayed[0].kind == EventKind.STATE

    next_one = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0)
    assert not next_one.done()  # nothing new yet: the follower waits
    lifecycle.record(attempt.id, EventKind.MESSAGE, {"content": "live"})
    async with asyncio.timeout(GUARD):
        live = await next_one
    assert (live.seq, live.kind, live.payload) == (5, EventKind.MESSAGE, {"content": "live"})

    event_log.close()
    assert await drain(follower) == []


async def test_replay_starts_after_the_given_position(store: Store, event_log: EventLog) -> None:
    (attempt,) = setup_attempts(store, 1)
    for i in range(5):
        store.append_event(attempt.id, EventKind.LOG, {"i": i})
    events = await drain(event_log.follow(attempt.id, after=3, live=False))
    assert [e.seq for e in events] == [4, 5, 6]
    assert await drain(event_log.follow(attempt.id, after=6, live=False)) == []


async def test_no_duplicates_when_an_event_is_in_store_and_queue(
    store: Store, event_log: EventLog, lifecycle: Lifecycle
) -> None:
    (attempt,) = setup_attempts(store, 1)
    follower = event_log.follow(attempt.id)
    first = await take(follower, 1)  # subscribed now, suspended in the middle of replay
    # stored *and* published while the follower is replaying: it finds them both ways
    lifecycle.record(attempt.id, EventKind.LOG, {"n": 1})
    lifecycle.record(attempt.id, EventKind.LOG, {"n": 2})
    rest = await take(follower, 2)
    lifecycle.record(attempt.id, EventKind.LOG, {"n": 3})
    live = await take(follower, 1)
    event_log.close()
    tail = await drain(follower)

    seqs = [e.seq for e in first + rest + live + tail]
    assert seqs == [1, 2, 3, 4]
    assert [e.payload.get("n") for e in rest + live] == [1, 2, 3]


async def test_global_follow_has_no_duplicates_either(store: Store, event_log: EventLog,
                                                      lifecycle: Lifecycle) -> None:
    one, two = setup_attempts(store, 2)
    follower = event_log.follow(None)
    got = await take(follower, 1)
    lifecycle.record(two.id, EventKind.LOG, {})
    lifecycle.record(one.id, EventKind.LOG, {})
    got += await take(follower, 3)
    event_log.close()
    got += await drain(follower)
    ids = [e.id for e in got]
    assert ids == sorted(set(ids))
    assert len(ids) == 4
    assert [e.attempt_id for e in got] == [one.id, two.id, two.id, one.id]


async def test_attempt_filter(store: Store, event_log: EventLog, lifecycle: Lifecycle) -> None:
    one, two = setup_attempts(store, 2)
    follower = event_log.follow(one.id)
    assert [e.attempt_id for e in await take(follower, 1)] == [one.id]
    lifecycle.record(two.id, EventKind.LOG, {"for": "two"})
    lifecycle.record(one.id, EventKind.LOG, {"for": "one"})
    lifecycle.record(two.id, EventKind.LOG, {"for": "two"})
    (live,) = await take(follower, 1)
    assert (live.attempt_id, live.payload) == (one.id, {"for": "one"})
    event_log.close()
    assert await drain(follower) == []

    replay = await drain(event_log.follow(two.id, live=False))
    assert [e.attempt_id for e in replay] == [two.id] * 3
    assert [e.seq for e in replay] == [1, 2, 3]


async def test_not_live_returns_after_replay(store: Store, event_log: EventLog) -> None:
    one, two = setup_attempts(store, 2)
    store.append_event(one.id, EventKind.LOG, {})
    assert [e.seq for e in await drain(event_log.follow(one.id, live=False))] == [1, 2]
    everything = await drain(event_log.follow(None, live=False))
    assert [e.id for e in everything] == [e.id for e in store.events_after(0)]
    assert {e.attempt_id for e in everything} == {one.id, two.id}
    assert await drain(event_log.follow(None, after=everything[-1].id, live=False)) == []


async def test_replay_crosses_batch_boundaries(store: Store, event_log: EventLog) -> None:
    (attempt,) = setup_attempts(store, 1)
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO events (attempt_id, seq, time, kind, payload) VALUES (?, ?, 0, 'log', '{}')",
            [(attempt.id, seq) for seq in range(2, 2502)],
        )
    events = await drain(event_log.follow(attempt.id, live=False))
    assert [e.seq for e in events] == list(range(1, 2502))
    everything = await drain(event_log.follow(None, live=False))
    assert len(everything) == 2501
    assert len({e.id for e in everything}) == 2501


async def test_close_ends_every_live_follower(store: Store, event_log: EventLog) -> None:
    one, two = setup_attempts(store, 2)

    async def collect(attempt_id: str | None) -> list[Event]:
        return [e async for e in event_log.follow(attempt_id)]

    tasks = [asyncio.create_task(collect(a)) for a in (one.id, two.id, None)]
    for _ in range(5):
        await asyncio.sleep(0)  # let every follower replay and start waiting
    assert not any(t.done() for t in tasks)
    event_log.close()
    async with asyncio.timeout(GUARD):
        results = await asyncio.gather(*tasks)
    assert [len(r) for r in results] == [1, 1, 2]
    # a follower that ended unsubscribed: publishing afterwards reaches no queue
    assert event_log._subscribers == set()


async def test_abandoned_follower_unsubscribes(store: Store, event_log: EventLog) -> None:
    (attempt,) = setup_attempts(store, 1)
    follower = event_log.follow(attempt.id)
    await take(follower, 1)
    assert len(event_log._subscribers) == 1
    await cast(AsyncGenerator[Event, None], follower).aclose()  # what happens when an SSE client goes away
    assert event_log._subscribers == set()
