"""The work waits for a person: the sandbox is stopped, then the attempt moves to review with a snapshot.

Review is a frozen state: stopping the container ends every process in it (one the
agent left in the background included), so the worktree cannot change after a
person saw its diff. Only a person's follow-up or shell starts it again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kilod.domain import State, Step, container_name
from kilod.pipeline.base import Outcome, StepContext


class ReviewStep:
    step = Step.REVIEW
    needs_container = False

    async def run(self, ctx: StepContext) -> Outcome:
        await asyncio.to_thread(ctx.services.sandbox.stop, container_name(ctx.attempt.id))
        # what the agent left, so a follow-up can tell it what a person changed since
        left = await ctx.repo.snapshot(Path(ctx.attempt.worktree), ctx.card.base_commit)
        return Outcome(state=State.REVIEW, fields={"review_tree": left.tree})
