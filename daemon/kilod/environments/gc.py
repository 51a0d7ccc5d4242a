"""Disk: collect what resting attempts no longer need, and say what kilod's disk holds.

- discarded attempts: their worktree and branch (discard removes them; this catches
  what a crash or an older daemon left behind);
- attempts resting in Review (or failed, cancelled) with no activity for a while:
  their container, egress proxy and network. The worktree stays, and the container
  is re-created on demand (a follow-up, a shell), as after a restart.

`kilod ctl gc` runs it now (POST /v1/gc); with `KILOD_GC_IDLE_AFTER` set, the daemon
runs it on its own every few minutes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kilod.domain import Attempt, State, container_name
from kilod.environments.egress import proxy_name
from kilod.errors import KilodError
from kilod.git.repository import Repositories
from kilod.store import Store

log = logging.getLogger(__name__)
RESTING = (State.REVIEW, State.FAILED, State.CANCELLED)
AUTO_INTERVAL_SECONDS = 300.0


@dataclass
class GcReport:
    worktrees_removed: list[str] = field(default_factory=list)
    containers_removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def last_activity(store: Store, attempt: Attempt) -> float:
    """When anything last happened to the attempt: its newest event, or when it came to rest."""
    seq = store.last_seq(attempt.id)
    newest = store.events_of(attempt.id, after_seq=seq - 1, limit=1) if seq else []
    times = [t for t in (attempt.finished_at, attempt.started_at, attempt.created_at) if t is not None]
    return max([*(e.time for e in newest), *times])


class Collector:
    def __init__(self, store: Store, remove_container: Callable[[str], bool],
                 container_exists: Callable[[str], bool], repositories: Repositories) -> None:
        self.store = store
        self.remove_container = remove_container
        self.container_exists = container_exists
        self.repositories = repositories  # each Repository holds its git lock: one mutation at a time
        self._lock = asyncio.Lock()

    async def collect(self, idle_after: float) -> GcReport:
        """One pass; `idle_after` seconds without activity make a resting attempt's container go."""
        async with self._lock:  # the CLI and the periodic pass must not remove the same things at once
            report = GcReport()
            now = time.time()
            for attempt in self.store.all_attempts():
                try:
                    if attempt.state == State.DISCARDED:
                        await self._worktree(attempt, report)
                    elif attempt.state in RESTING and now - last_activity(self.store, attempt) >= idle_after:
                        await self._container(attempt, report)
                except KilodError as exc:
                    report.errors.append(f"{attempt.id}: {exc}")
            return report

    async def _worktree(self, attempt: Attempt, report: GcReport) -> None:
        worktree = Path(attempt.worktree)
        card = self.store.get_card(attempt.card_id)
        if not Path(card.repo).is_dir():
            return  # the repository is gone: its branches with it
        repo = await self.repositories.open(card.repo)
        has_branch = await repo.rev(f"refs/heads/{attempt.branch}") is not None
        if worktree.exists() or worktree.is_symlink() or has_branch:
            await repo.remove_worktree(worktree, attempt.branch)
            report.worktrees_removed.append(attempt.id)

    async def _container(self, attempt: Attempt, report: GcReport) -> None:
        removed = False
        for name in (container_name(attempt.id), proxy_name(attempt.id)):
            if await asyncio.to_thread(self.container_exists, name):
                removed = await asyncio.to_thread(self.remove_container, name) or removed
        if removed:
            report.containers_removed.append(attempt.id)


async def collect_forever(collector: Collector, idle_after: float, interval: float = AUTO_INTERVAL_SECONDS) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            report = await collector.collect(idle_after)
            if report.worktrees_removed or report.containers_removed:
                log.info("gc: removed worktrees of %s, containers of %s", report.worktrees_removed,
                         report.containers_removed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("gc pass failed")


def tree_bytes(root: Path) -> int:
    """Bytes in files under `root` (symlinks not followed), like `du -s --apparent-size`."""
    total = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
    return total
