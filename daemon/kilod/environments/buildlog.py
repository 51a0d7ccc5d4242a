"""A build's output as an attempt's events: lines from a worker thread, batched onto the event loop.

One event per line would flood the store on a long build; one per build would show
nothing until the end. Lines are sent in batches (every second or every few dozen
lines), each as one event the board and `ctl logs` show as it arrives.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

BATCH_LINES = 40
BATCH_SECONDS = 1.0


class BuildLog:
    def __init__(self, loop: asyncio.AbstractEventLoop, record: Callable[[str], None]) -> None:
        self.loop = loop
        self.record = record
        self._lines: list[str] = []
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        """Called from the building thread."""
        with self._lock:
            self._lines.append(line)
            due = len(self._lines) >= BATCH_LINES or time.monotonic() - self._last >= BATCH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
            self._last = time.monotonic()
        if lines:
            self.loop.call_soon_threadsafe(self.record, "\n".join(lines))
