"""`Repository`: one repository's git, its lock and its threads, behind one type.

Every git call the daemon makes goes through here: each runs in a thread, and a
`GitFailed` from any of them is mapped into the error tree once, in `_mapped`.
Answers that are not failures ("this ref is absent", "these branches are free")
come back as values from the modules below, never as a caught error.

git takes repository-wide locks (refs, worktree admin dirs), so one mutation per
repository at a time: `Repositories` hands out one `Repository`, with one lock,
per common git dir, however many paths name it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from kilod.errors import Conflict, KilodError, Unavailable
from kilod.git import diff as diffs
from kilod.git import landing, recovery, refs
from kilod.git import snapshot as snapshots
from kilod.git import worktree as worktrees
from kilod.git.paths import RepoPaths, inspect_repo
from kilod.git.runner import GitFailed, rev

P = ParamSpec("P")
T = TypeVar("T")


def _mapped(exc: GitFailed) -> KilodError:
    """What a git failure means to kilod: only a refused compare-and-swap is the caller's conflict."""
    if exc.command == "update-ref":
        return Conflict(f"a branch moved while kilod was updating it; nothing was changed ({exc.stderr})")
    return Unavailable(f"git {exc.command} failed: {exc.stderr or f'exit {exc.exit_code}'}")


class Repository:
    def __init__(self, paths: RepoPaths, lock: asyncio.Lock | None = None,
                 max_file_bytes: int = snapshots.DEFAULT_MAX_FILE_BYTES) -> None:
        self.paths = paths
        self.lock = lock or asyncio.Lock()
        self.max_file_bytes = max_file_bytes   # larger worktree files never become blobs in the repository

    @property
    def path(self) -> Path:
        return self.paths.path

    @property
    def common_dir(self) -> Path:
        return self.paths.common_dir

    def worktree_git_dir(self, worktree_path: Path) -> Path:
        return self.paths.worktree_git_dir(worktree_path)

    async def _thread(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # a thread cannot be stopped: a cancelled caller waits for git to finish before it lets go of the
            # lock it holds, or a cancel followed by a discard removes a worktree `worktree add` is still writing
            await asyncio.gather(work, return_exceptions=True)
            raise
        except GitFailed as exc:
            raise _mapped(exc) from exc

    # -- refs -------------------------------------------------------------------

    async def rev(self, ref: str) -> str | None:
        """The commit `ref` names, or None."""
        return await self._thread(rev, self.common_dir, ref)

    async def resolve_base(self, ref: str) -> str:
        return await self._thread(refs.resolve_base, self.paths, ref)

    async def base_branch_of(self, ref: str) -> str | None:
        return await self._thread(refs.base_branch_of, self.paths, ref)

    async def require_free_branches(self, branches: list[str]) -> None:
        await self._thread(refs.require_free_branches, self.paths, branches)

    # -- worktrees ----------------------------------------------------------------

    async def add_worktree(self, path: Path, branch: str, base_commit: str, owner: tuple[int, int] | None) -> None:
        async with self.lock:
            await self._thread(worktrees.add_worktree, self.paths, path, branch, base_commit, owner)

    async def remove_worktree(self, path: Path, branch: str | None) -> None:
        async with self.lock:
            await self._thread(worktrees.remove_worktree, self.paths, path, branch)

    async def copy_untracked(self, path: Path, patterns: list[str], owner: tuple[int, int] | None) -> list[str]:
        return await self._thread(worktrees.copy_untracked, self.path, path, patterns, owner)

    def pointer_is_intact(self, path: Path) -> bool:
        return worktrees.pointer_is_intact(self.paths, path)

    # -- content --------------------------------------------------------------------

    async def snapshot(self, path: Path, base_commit: str) -> snapshots.Snapshot:
        return await self._thread(snapshots.snapshot, self.paths, path, base_commit, self.max_file_bytes)

    async def worktree_diff(self, path: Path, base_commit: str) -> tuple[snapshots.Snapshot, diffs.Diff]:
        return await self._thread(diffs.worktree_diff, self.paths, path, base_commit, self.max_file_bytes)

    async def diff(self, base: str, tree: str, path: Path | None = None) -> diffs.Diff:
        """base → tree, read from the worktree's admin dir when its objects may be there alone."""
        git_dir = self.common_dir if path is None else self.worktree_git_dir(path)
        return await self._thread(diffs.diff_trees, git_dir, base, tree)

    # -- landing ----------------------------------------------------------------------

    async def identity(self, name: str | None, email: str | None) -> landing.Identity:
        return await self._thread(landing.identity, self.paths, name, email)

    async def plan_landing(self, branch: str, base_commit: str, tree: str, message: str, who: landing.Identity,
                           merge_into: str | None, merge_message: str) -> landing.LandingPlan:
        return await self._thread(landing.plan_landing, self.paths, branch, base_commit, tree, message, who,
                                  merge_into, merge_message)

    async def commit_landing(self, plan: landing.LandingPlan) -> None:
        async with self.lock:
            await self._thread(landing.commit_landing, self.paths, plan)

    async def merge_target(self, plan: landing.MergePlan) -> landing.MergeTarget:
        return await self._thread(landing.merge_target, self.paths, plan)

    async def land_merge(self, plan: landing.MergePlan,
                         target: landing.MergeTarget | None = None) -> landing.MergeResult:
        """Merge as planned, into `target` (decided now when not given)."""
        async with self.lock:
            if target is None:
                target = await self._thread(landing.merge_target, self.paths, plan)
            return await self._thread(landing.land_merge, self.paths, plan, target)

    async def repair_landing(self, plan: landing.LandingPlan, target: landing.MergeTarget | None) -> list[str]:
        async with self.lock:
            return await self._thread(recovery.repair_landing, self.paths, plan, target)


class Repositories:
    """One `Repository` per working tree, and one lock per common git dir, made on first use."""

    def __init__(self, max_file_bytes: int = snapshots.DEFAULT_MAX_FILE_BYTES) -> None:
        self.max_file_bytes = max_file_bytes
        self._locks: dict[Path, asyncio.Lock] = {}
        self._open: dict[RepoPaths, Repository] = {}

    async def open(self, path_text: str) -> Repository:
        """The repository whose working tree is at `path_text`; Invalid if there is none."""
        paths = await asyncio.to_thread(inspect_repo, path_text)
        if paths not in self._open:
            # a linked working tree of the same repository shares its git dir, so its lock
            self._open[paths] = Repository(paths, self._locks.setdefault(paths.common_dir, asyncio.Lock()),
                                           self.max_file_bytes)
        return self._open[paths]
