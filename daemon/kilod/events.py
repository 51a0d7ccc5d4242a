"""The event log: replay from a position, then follow live.

Every event is in the store before it is published here, so a reader that
subscribes, replays from the store and then drains its queue (skipping what it
has already seen) misses nothing and sees nothing twice. The CLI, SSE and the web
page all read through `follow`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from kilod.domain import Event
from kilod.store import Store

_CLOSED = None


class EventLog:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._closed = False

    def publish(self, *events: Event) -> None:
        for queue in self._subscribers:
            for event in events:
                queue.put_nowait(event)

    def close(self) -> None:
        """End every follower (daemon shutdown), and any that starts later."""
        self._closed = True
        for queue in self._subscribers:
            queue.put_nowait(_CLOSED)

    async def follow(self, attempt_id: str | None, after: int = 0, live: bool = True) -> AsyncIterator[Event]:
        """Events of one attempt after `seq` (or of all attempts after global `id`)."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._subscribers.add(queue)

        def position(event: Event) -> int:
            return event.seq if attempt_id is not None else event.id

        try:
            last = after
            while True:
                batch = (
                    self._store.events_of(attempt_id, last, limit=1000)
                    if attempt_id is not None
                    else self._store.events_after(last, limit=1000)
                )
                if not batch:
                    break
                for event in batch:
                    yield event
                    last = position(event)
            # Everything up to `last` was replayed. Live events may come a little out of
            # order (a group commit's callers resume after a sync writer that committed
            # later), so only what the replay already gave is skipped: each event is
            # published once, so nothing comes twice.
            replayed = last
            while live and not self._closed:
                queued = await queue.get()
                if queued is _CLOSED:
                    return
                if attempt_id is not None and queued.attempt_id != attempt_id:
                    continue
                if position(queued) <= replayed:
                    continue
                yield queued
        finally:
            self._subscribers.discard(queue)
