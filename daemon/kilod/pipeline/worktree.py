"""The attempt's git worktree on its own branch, with the repository's untracked files it asks for."""

from __future__ import annotations

import os
import time
from pathlib import Path

from kilod.config import Settings
from kilod.domain import Step
from kilod.pipeline.base import Outcome, StepContext


def worktree_owner(settings: Settings) -> tuple[int, int] | None:
    """Files in a worktree must belong to the sandbox user; only a root daemon has to say so."""
    uid, gid = settings.sandbox_owner
    return (uid, gid) if os.getuid() == 0 and uid != 0 else None


class WorktreeStep:
    step = Step.WORKTREE
    needs_container = False

    async def run(self, ctx: StepContext) -> Outcome:
        started = time.monotonic()
        worktree, owner = Path(ctx.attempt.worktree), worktree_owner(ctx.services.settings)
        await ctx.repo.add_worktree(worktree, ctx.attempt.branch, ctx.card.base_commit, owner)
        copied = await ctx.repo.copy_untracked(worktree, ctx.repo_settings.copy_files, owner)
        if ctx.services.metrics is not None:
            ctx.services.metrics.worktree_create.observe(time.monotonic() - started)
        note = f"; copied {', '.join(copied)}" if copied else ""
        return Outcome(f"worktree ready at {worktree} on {ctx.attempt.branch}{note}")
