"""An attempt's container must outlive the work that runs in it.

`docker rm -f` (a person, a prune, the engine) under a running attempt kills whatever
ran inside; the tool call in flight comes back as a killed process and every later one
fails, so without this the agent would stop and the attempt would go to Review as if
nothing had happened. Instead the work is watched: when the container it runs in is
gone (or replaced by another of the same name), the work is cancelled and the attempt
fails with "container removed". A person can retry it. A container stopped or killed
under the attempt (`docker stop`, `docker kill`) counts the same: what ran in it is gone.

One `ContainerWatch` watches every attempt's container with one list call per interval
(the running containers labelled with the daemon's instance), not one inspect per attempt:
at 20 live attempts that was 20 requests a second, each Python work (HTTP, JSON) holding
the GIL the event loop needs. A list rather than Docker's event stream: a list asked again
after the engine restarts sees what is running now, where a stream would have to be
reconnected and would miss what died while it was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kilod.errors import Unavailable

WATCH_INTERVAL_SECONDS = 1.0

T = TypeVar("T")
log = logging.getLogger(__name__)


class ContainerRemoved(Unavailable):
    """The attempt's container disappeared while the attempt was running."""

    reason = "container_removed"


def removed(container_id: str) -> ContainerRemoved:
    return ContainerRemoved(f"container removed: the attempt's sandbox container ({container_id[:12]}) was removed "
                            "or stopped while the attempt ran, and what ran in it with it; retry the attempt")


@dataclass
class _Watched:
    container_id: str
    since: int                      # the number of lists started before it was watched
    gone: asyncio.Future[None] = field(repr=False)


class ContainerWatch:
    """Every watched container's life, from one list of the running ones per interval.

    `running` lists the ids of the instance's running containers (blocking: called in a
    thread); `exists` asks about one container (the check when the work ends). The list runs
    only while something is watched. A list that fails (the engine restarting) is tried again
    at the next interval rather than failing every attempt: a container that did not survive
    the restart is missing from the next list that works.
    """

    def __init__(self, running: Callable[[], set[str]], exists: Callable[[str], bool],
                 interval: float = WATCH_INTERVAL_SECONDS) -> None:
        self._running = running
        self._exists = exists
        self.interval = interval
        self._watched: list[_Watched] = []
        self._lists = 0                 # lists started so far
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def guard(self, work: Awaitable[T], container_id: str) -> T:
        """Await `work` while the container runs; ContainerRemoved (the work cancelled) when it is gone.

        Checked once more when the work ends: a removal is often what made it end.
        """
        watched = _Watched(container_id, self._lists, asyncio.get_running_loop().create_future())
        self._watched.append(watched)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="kilod-container-watch")
        task = asyncio.ensure_future(work)
        try:
            either: set[asyncio.Future[Any]] = {task, watched.gone}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if watched.gone.done() or not await asyncio.to_thread(self._exists, container_id):
                raise removed(container_id)
            return task.result()
        finally:
            self._watched.remove(watched)
            if not watched.gone.done():
                watched.gone.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _watch(self) -> None:
        while self._watched:
            await asyncio.sleep(self.interval)
            if not self._watched:
                return
            self._lists += 1
            listed = self._lists
            try:
                running = await asyncio.to_thread(self._running)
            except Exception as exc:   # the engine restarting, say: the next list will tell
                if not self._failing:
                    log.warning("cannot list the attempts' containers (tried again every %.0fs): %s",
                                self.interval, exc)
                self._failing = True
                continue
            self._failing = False
            for watched in self._watched:
                # one watched after this list began may be younger than the list: the next list judges it
                if watched.since < listed and watched.container_id not in running and not watched.gone.done():
                    watched.gone.set_result(None)
