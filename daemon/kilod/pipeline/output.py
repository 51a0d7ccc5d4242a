"""A running setup or check command's output as `output` events: live, batched, lines kept whole, bounded.

One event per write would flood the store (a chatty build writes thousands of times a
second) and one at the end shows nothing while it runs. So text gathers for at most
BATCH_SECONDS, or until BATCH_BYTES have come, and is sent cut at its last line end
(a partial line waits for its end, or until the command has been quiet that long).
Past `limit` bytes per command one last event says it was cut, and nothing more is
recorded; the end-of-command event still carries the output's tail.

The exec runs in a worker thread: `feed` hands its text to the event loop, where the
batching and the (group-committed, ordered) writes happen.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from kilod.domain import EventKind
from kilod.lifecycle import Lifecycle

BATCH_BYTES = 4096
BATCH_SECONDS = 0.5


class LiveOutput:
    def __init__(self, lifecycle: Lifecycle, attempt_id: str, label: dict[str, Any], limit: int) -> None:
        self._lifecycle = lifecycle
        self._attempt_id = attempt_id
        self._label = label          # what every event says it is the output of: step, command, a check's name
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._buffer = ""
        self._last_text = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._writes: asyncio.Task[None] | None = None
        self._closed = False
        self.seen = 0                # bytes the command wrote
        self.recorded = 0            # bytes recorded as events
        self.cut = False

    def feed(self, text: str) -> None:
        """Called from the exec's thread with each piece of output."""
        with contextlib.suppress(RuntimeError):  # the loop is closed (the daemon stopped): nobody is listening
            self._loop.call_soon_threadsafe(self._take, text)

    def _take(self, text: str) -> None:
        self.seen += len(text.encode("utf-8", "replace"))
        if self._closed or self.cut:
            return
        self._buffer += text
        self._last_text = self._loop.time()
        while len(self._buffer) >= BATCH_BYTES and not self.cut:
            piece = self._buffer[:BATCH_BYTES]
            end = piece.rfind("\n") + 1
            self._send(piece[:end] if end else piece)
        if self._buffer and self._timer is None and not self.cut:
            self._timer = self._loop.call_later(BATCH_SECONDS, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if not self._buffer or self.cut:
            return
        end = self._buffer.rfind("\n") + 1
        if end:
            self._send(self._buffer[:end])
        elif self._loop.time() - self._last_text >= BATCH_SECONDS * 0.9:
            self._send(self._buffer)  # a partial line and the command quiet: show it as it is
        if self._buffer and not self.cut:
            self._timer = self._loop.call_later(BATCH_SECONDS, self._tick)

    def _send(self, text: str) -> None:
        """Record `text` (the buffer's start) as one event, or as much as the limit leaves and a note."""
        self._buffer = self._buffer[len(text):]
        data = text.encode("utf-8", "replace")
        room = self._limit - self.recorded
        payload: dict[str, Any] = {**self._label}
        if len(data) > room:
            kept = data[:room].decode("utf-8", "ignore")
            end = kept.rfind("\n") + 1
            text = kept[:end] if end else kept
            self.cut = True
            self._buffer = ""
            payload["cut"] = True
            payload["message"] = (f"output cut: more than {self._limit:,} bytes; the command goes on, "
                                  "and its end shows the last lines")
        payload["text"] = text
        self.recorded += len(text.encode("utf-8"))
        previous = self._writes
        self._writes = self._loop.create_task(self._write(previous, payload))

    async def _write(self, previous: asyncio.Task[None] | None, payload: dict[str, Any]) -> None:
        if previous is not None:  # in order: each write waits for the one before
            await previous
        await self._lifecycle.record_async(self._attempt_id, EventKind.OUTPUT, payload)

    async def close(self) -> None:
        """The command ended: send what is left and wait until every event is stored."""
        await asyncio.sleep(0)  # pieces handed over just before (queued on the loop) are taken first
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._buffer and not self.cut and not self._closed:
            self._send(self._buffer)
        self._closed = True
        if self._writes is not None:
            await self._writes

    def abandon(self) -> None:
        """The step was cancelled: record nothing more (writes already started finish on their own)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writes is not None:
            # its error, if any, is nobody's to handle now: retrieved so asyncio does not complain
            self._writes.add_done_callback(lambda task: task.cancelled() or task.exception())
