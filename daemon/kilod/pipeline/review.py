"""The work waits for a person: the attempt moves to review with a snapshot of what the agent left."""

from __future__ import annotations

from pathlib import Path

from kilod.domain import State, Step
from kilod.pipeline.base import Outcome, StepContext


class ReviewStep:
    step = Step.REVIEW
    needs_container = False

    async def run(self, ctx: StepContext) -> Outcome:
        # what the agent left, so a follow-up can tell it what a person changed since
        left = await ctx.repo.snapshot(Path(ctx.attempt.worktree), ctx.card.base_commit)
        return Outcome(state=State.REVIEW, fields={"review_tree": left.tree})
