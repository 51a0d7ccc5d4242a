"""Runs attempts within `max_parallel` slots and reconciles what should exist with what does.

Queued attempts start in creation order as slots free. At start-up and every few
seconds the reconciler adopts: attempts stored as starting/running are resumed
(their containers are found by label), and labelled containers that belong to no
attempt that still needs one are removed. Nothing unlabelled is ever touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from kilod.config import Settings
from kilod.diskspace import DiskGuard
from kilod.domain import KEEPS_CONTAINER, LIVE_STATES, SLOT_STATES, State
from kilod.errors import KilodError
from kilod.lifecycle import Lifecycle
from kilod.metrics import Metrics
from kilod.sandbox.base import Sandbox

log = logging.getLogger(__name__)

# Attempts stored in these states were under way (a daemon restart, a follow-up): they continue.
# One paused by a full disk too: its pipeline waits for space inside its slot. A person's pause
# is at rest (no slot) until POST /resume moves it back to running.
RESUMES = SLOT_STATES


class Scheduler:
    def __init__(self, settings: Settings, lifecycle: Lifecycle, run: Callable[[str], Coroutine[Any, Any, None]],
                 sandbox: Sandbox, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.run = run          # one attempt's pipeline, from its stored step
        self.sandbox = sandbox
        self.metrics = metrics
        self.disk = DiskGuard(settings.data_dir, settings.min_free_bytes)
        self.active: dict[str, asyncio.Task[None]] = {}
        self.peak_active = 0
        self._reconciler: asyncio.Task[None] | None = None
        self._stopping = False

    def kick(self) -> None:
        """Start what may start now. Cheap and idempotent: call it after anything changes.

        A slot is the one gate for anything that runs: a resume after a restart, a
        follow-up and a retry wait for one exactly like a new attempt. Resumes go first
        (they were running already), then the queue in creation order.
        """
        if self._stopping:
            return
        free = self.settings.max_parallel - len(self.active)
        if free <= 0:
            return
        resuming = [a for a in self.store.attempts_in(*RESUMES, State.PAUSED)
                    if a.id not in self.active and (a.state in RESUMES or a.waits_for_disk)]
        waiting = [a for a in self.store.attempts_in(State.QUEUED) if a.id not in self.active]
        if waiting and self.disk.below_floor():
            # new work waits above the floor; what was running goes on (and pauses if the disk fills)
            self.disk.log.warning("queue", "%d queued attempt(s) wait for disk space: %s", len(waiting),
                                  self.disk.describe())
            waiting = []
        for attempt in [*resuming, *waiting][:free]:
            self._start(attempt.id)

    def _start(self, attempt_id: str) -> None:
        task = asyncio.create_task(self.run(attempt_id), name=f"attempt-{attempt_id}")
        self.active[attempt_id] = task
        self.peak_active = max(self.peak_active, len(self.active))

        def done(_: asyncio.Task[None]) -> None:
            self.active.pop(attempt_id, None)
            self._report_slots()
            self.kick()

        task.add_done_callback(done)
        self._report_slots()

    def _report_slots(self) -> None:
        if self.metrics is not None:
            self.metrics.running.set(len(self.active))

    async def cancel(self, attempt_id: str) -> None:
        """Stop a live attempt; its worktree and container stay for review."""
        attempt = self.store.get_attempt(attempt_id)
        if attempt.state in LIVE_STATES:
            self.lifecycle.transition(attempt_id, State.CANCELLED, error="cancelled by a person")
        task = self.active.get(attempt_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def start(self) -> None:
        self._reconciler = asyncio.create_task(self._reconcile_forever(), name="reconciler")

    async def stop(self) -> None:
        self._stopping = True
        tasks = [*self.active.values(), *([self._reconciler] if self._reconciler else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _reconcile_forever(self) -> None:
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except KilodError as exc:
                log.warning("reconcile: %s", exc)
            except Exception:
                log.exception("reconcile failed")
            await asyncio.sleep(self.settings.reconcile_interval)

    async def reconcile(self) -> None:
        self.kick()
        containers = await asyncio.to_thread(self.sandbox.list_labelled, self.settings.instance)
        for info in containers:
            try:
                state = self.store.get_attempt(info.attempt_id).state
            except KilodError:
                state = None
            if state in KEEPS_CONTAINER or info.attempt_id in self.active:
                continue
            if state == State.QUEUED:
                continue  # about to be adopted by its own pipeline
            log.info("removing leftover container %s (attempt state: %s)", info.name, state,
                     extra={"attempt_id": info.attempt_id})
            await asyncio.to_thread(self.sandbox.remove, info.name)
