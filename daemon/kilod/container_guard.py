"""An attempt's container must outlive the work that runs in it.

`docker rm -f` (a person, a prune, the engine) under a running attempt kills whatever
ran inside; the tool call in flight comes back as a killed process and every later one
fails, so without this the agent would stop and the attempt would go to Review as if
nothing had happened. Instead the work is watched: when the container it runs in is
gone (or replaced by another of the same name), the work is cancelled and the attempt
fails with "container removed". A person can retry it. A container stopped or killed
under the attempt (`docker stop`, `docker kill`) counts the same: what ran in it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kilod.errors import Unavailable

WATCH_INTERVAL_SECONDS = 1.0

T = TypeVar("T")


class ContainerRemoved(Unavailable):
    """The attempt's container disappeared while the attempt was running."""

    reason = "container_removed"


def removed(container_id: str) -> ContainerRemoved:
    return ContainerRemoved(f"container removed: the attempt's sandbox container ({container_id[:12]}) was removed "
                            "or stopped while the attempt ran, and what ran in it with it; retry the attempt")


async def while_container_lives(work: Awaitable[T], exists: Callable[[], bool], container_id: str,
                                interval: float = WATCH_INTERVAL_SECONDS) -> T:
    """Await `work`, checking every `interval` that the container is still there; ContainerRemoved if not.

    Checked once more when the work ends: a removal is often what made it end.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            alive = await asyncio.to_thread(exists)
            if not alive:
                raise removed(container_id)
            if done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
