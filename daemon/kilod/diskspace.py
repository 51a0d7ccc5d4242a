"""A full disk is a condition to wait out, not a crash.

When the disk holding the data dir fills (an agent's `dd`, a huge build), SQLite answers
"database or disk is full" and every write fails. Retrying at once floods the log and,
worse, re-running the step that failed re-runs a tool call that already ran (and fills
the disk again). So:

- `DiskFull` (503) is what a full disk becomes, mapped once where it enters: SQLite's
  error in the store, ENOSPC from files and git via `is_disk_full`.
- The attempt that met it *pauses* (state `paused`, reason in `error`): its pipeline
  keeps what it was holding (a tool's result, a model's reply) and waits, backing off,
  until the free space is above the floor again; then it writes what it held and goes on.
  `persist_async()` is that wait for one write (through the store's group commit, so the
  event loop never waits for an fsync); the pipeline uses it for a whole step.
- A small reserve file is kept in the data dir and deleted the moment the disk is found
  full, so the pause itself (a few rows) can still be written; it is made again once
  space is back.
- A floor (`KILOD_MIN_FREE_BYTES`) refuses new cards and keeps queued attempts waiting
  before the disk is actually full.
- What is logged about it is rate-limited: one line per minute per subject, with a count.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from kilod.errors import Unavailable

log = logging.getLogger(__name__)

RESERVE_NAME = ".kilod-reserve"
RESERVE_BYTES = 8 * 1024 * 1024
LOG_EVERY_SECONDS = 60.0
BACKOFF_START_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
_FULL_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded")

T = TypeVar("T")


class DiskFull(Unavailable):
    """The disk holding kilod's data is full (or below the configured floor)."""

    reason = "disk_full"


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or what caused it, is a full disk (SQLite's, the kernel's or git's words for it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFull):
            return True
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(current, sqlite3.OperationalError) and (
                getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL):
            return True
        if any(text in str(current).lower() for text in _FULL_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def mebibytes(count: int) -> str:
    return f"{count / 1024 / 1024:.1f} MiB"


class RateLimitedLog:
    """At most one line per subject per interval; the lines in between are counted, not lost."""

    def __init__(self, interval: float = LOG_EVERY_SECONDS) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warning(self, subject: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(subject, -self.interval) < self.interval:
            self._skipped[subject] = self._skipped.get(subject, 0) + 1
            return
        skipped = self._skipped.pop(subject, 0)
        self._last[subject] = now
        suffix = f" ({skipped} more like this since the last line)" if skipped else ""
        log.warning(message + suffix, *args)


class DiskGuard:
    """Free space of the data dir: the floor, the reserve, and waiting for space to come back."""

    def __init__(self, data_dir: Path, min_free_bytes: int, reserve_bytes: int = RESERVE_BYTES) -> None:
        self.data_dir = data_dir
        self.min_free_bytes = min_free_bytes
        self.reserve_bytes = reserve_bytes
        self.reserve = data_dir / RESERVE_NAME
        self.log = RateLimitedLog()

    def free(self) -> int:
        try:
            return shutil.disk_usage(self.data_dir).free
        except OSError:
            return 0

    def below_floor(self) -> bool:
        return self.free() < self.min_free_bytes

    def describe(self) -> str:
        return (f"{mebibytes(self.free())} free on {self.data_dir}; "
                f"new attempts need {mebibytes(self.min_free_bytes)} (KILOD_MIN_FREE_BYTES)")

    def check_floor(self, what: str) -> None:
        """Refuse `what` (a new card, a retry) while free space is below the floor."""
        if self.below_floor():
            raise DiskFull(f"not enough disk space for {what}: {self.describe()}; free some space and try again",
                           free_bytes=self.free(), min_free_bytes=self.min_free_bytes)

    # -- the reserve ----------------------------------------------------------------

    def make_reserve(self) -> bool:
        """Write the reserve file when there is room for it above the floor; True if it exists."""
        if self.reserve.exists():
            return True
        if self.reserve_bytes <= 0 or self.free() < self.min_free_bytes + 2 * self.reserve_bytes:
            return False
        try:
            fd = os.open(self.reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return True
        except OSError:
            return False
        try:
            chunk = b"\0" * (1024 * 1024)
            left = self.reserve_bytes
            while left > 0:  # real blocks, not a sparse hole: freeing it must free space
                left -= os.write(fd, chunk[:left])
            os.fsync(fd)
        except OSError:
            os.close(fd)
            self.reserve.unlink(missing_ok=True)
            return False
        os.close(fd)
        return True

    def release_reserve(self) -> bool:
        try:
            self.reserve.unlink()
        except FileNotFoundError:
            return False
        return True

    # -- meeting a full disk, and waiting it out --------------------------------------

    def met_full(self, subject: str, exc: BaseException) -> None:
        """Free the reserve (so a pause can be written) and say so, rate-limited."""
        released = self.release_reserve()
        self.log.warning(f"disk-full:{subject}", "%s: disk full (%s); %s%s; waiting for space", subject,
                         str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__, self.describe(),
                         f"; released the {mebibytes(self.reserve_bytes)} reserve" if released else "")

    def has_room(self) -> bool:
        return self.free() >= self.min_free_bytes + (0 if self.reserve.exists() else self.reserve_bytes)

    async def wait_for_space(self, subject: str) -> None:
        """Return once free space is back above the floor (with room for the reserve); backs off."""
        delay = BACKOFF_START_SECONDS
        while not self.has_room():
            self.log.warning(f"waiting:{subject}", "%s: still waiting for disk space: %s", subject, self.describe())
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)
        self.make_reserve()
        log.info("%s: disk space is back (%s)", subject, self.describe())


# The pipeline of an attempt sets this for its task: how to wait out a full disk there
# (free the reserve, write what is held, pause the attempt, wait for space, resume it).
# Code it calls (the agent loop) uses it through `persist` without knowing about attempts.
Held = Callable[[], Awaitable[object]]
WAIT_FOR_SPACE: contextvars.ContextVar[Callable[[DiskFull, Held | None], Awaitable[bool]] | None] = (
    contextvars.ContextVar("kilod_wait_for_space", default=None))


async def persist_async(write: Callable[[], Awaitable[T]]) -> T:
    """Run a store write; on a full disk wait for space and write again, never giving up what it holds.

    For writes that record something that already happened and must not happen twice: a
    tool call's result, a model's reply. `write` makes a fresh awaitable each time, so it
    can be the store's group commit (`…_async`): the event loop does not wait for the
    fsync, and a full disk still arrives here as DiskFull (the writer maps it). Without a
    waiter (outside an attempt) DiskFull propagates.
    """
    while True:
        try:
            return await write()
        except DiskFull as exc:
            wait = WAIT_FOR_SPACE.get()
            if wait is None:
                raise
            written: list[T] = []
            # the waiter tries the write once more right after freeing the reserve: what is held
            # is then stored before the wait, so even a daemon killed while paused keeps it
            await wait(exc, partial(_write_into, written, write))
            if written:
                return written[0]


async def persist(write: Callable[[], T]) -> T:
    """`persist_async` for a write made on the caller's thread (cold paths: failing an attempt)."""
    async def once() -> T:
        return write()

    return await persist_async(once)


async def _write_into(results: list[T], write: Callable[[], Awaitable[T]]) -> None:
    results.append(await write())
