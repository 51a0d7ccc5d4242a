"""Deciding an attempt: approve it (plan → commit → land → clean) or discard it.

Approve commits exactly the tree the reviewer saw (`expected_tree`), on the
attempt's branch, and optionally merges it into the card's base branch. Every ref
moves with compare-and-swap after the whole landing was planned, so a conflict or a
branch that moved meanwhile changes nothing. Approving one attempt discards its
siblings: the card is done.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kilod.config import Settings
from kilod.crashpoints import crash_point
from kilod.diskspace import DiskFull
from kilod.domain import LIVE_STATES, Attempt, Card, EventKind, State, container_name
from kilod.errors import Conflict, KilodError
from kilod.git.landing import LandingPlan, MergeResult
from kilod.git.repository import Repositories, Repository
from kilod.lifecycle import Lifecycle
from kilod.review.context import AttemptContext, CardLocks, Stop, open_attempt
from kilod.review.journal import LandingJournal, OpenLanding
from kilod.sandbox.base import Sandbox

log = logging.getLogger(__name__)


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # strict: `"merge": "yes"` is an error, not True
    message: str | None = Field(None, min_length=1, max_length=20_000)
    merge: bool = False
    tree: str = Field(pattern=r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$",
                      description="the tree id of the diff the reviewer saw (the diff's `tree`); what lands is "
                                  "exactly this tree, and 409 (with the new `tree`) if the worktree changed since")


class Landing:
    def __init__(self, settings: Settings, lifecycle: Lifecycle, repositories: Repositories, sandbox: Sandbox,
                 stop: Stop, locks: CardLocks) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.repositories = repositories
        self.sandbox = sandbox
        self.stop = stop
        self.locks = locks
        self.journal = LandingJournal(settings.data_dir / "landings.db")

    async def approve(self, attempt_id: str, message: str | None, merge: bool,
                      expected_tree: str) -> dict[str, Any]:
        ctx = await open_attempt(self.store, self.repositories, attempt_id)
        async with self.locks.of(ctx.attempt):
            ctx = AttemptContext(self.store.get_attempt(attempt_id), ctx.card, ctx.repo)
            plan = await self._plan(ctx, message, merge, expected_tree)
            target = None if plan.merge is None else await ctx.repo.merge_target(plan.merge)
            # nothing has moved yet; the plan is on disk before the first ref moves (each with compare-and-swap)
            self.journal.begin(attempt_id, plan, target)
            crash_point("journaled")
            try:
                await ctx.repo.commit_landing(plan)
                crash_point("branch")
                merged = (None if plan.merge is None or target is None
                          else await ctx.repo.land_merge(plan.merge, target))
            except KilodError as exc:  # refused (a branch moved): nothing for a restart to finish
                self.journal.finish(attempt_id, f"stopped: {exc}")
                raise
            attempt = self._record(ctx.attempt, plan, merged)
            crash_point("recorded")
            try:
                self.journal.finish(attempt_id, "landed")
            except DiskFull as exc:
                # it landed and is recorded: left open, the entry is found complete and closed at the next start
                log.warning("landing of %s: %s", attempt_id, exc, extra={"attempt_id": attempt_id})
            discarded = await self._clean_after(attempt, ctx.card, ctx.repo)
        return {
            "attempt": self.store.get_attempt(attempt.id).to_json(),
            "commit": plan.commit,
            "branch": attempt.branch,
            "merge": None if merged is None else {
                "branch": merged.branch, "head": merged.head, "fast_forward": merged.fast_forward,
                "worktree_updated": merged.worktree_updated, "checkout": merged.checkout, "note": merged.note,
            },
            "discarded": discarded,
        }

    async def _plan(self, ctx: AttemptContext, message: str | None, merge: bool,
                    expected_tree: str) -> LandingPlan:
        """The commit and merge approve will make; Conflict (changing nothing) if it cannot."""
        attempt, card = ctx.attempt, ctx.card
        if attempt.state != State.REVIEW:
            raise Conflict(f"only an attempt in review can be approved; {attempt.id} is {attempt.state}")
        worktree = ctx.worktree()
        if merge and not card.base_branch:
            raise Conflict(f"the card's base '{card.base_ref}' is not a branch; there is nothing to merge into")
        # a shell or follow-up may have started the container again: freeze it before looking
        await asyncio.to_thread(self.sandbox.stop, container_name(attempt.id))
        snap = await ctx.repo.snapshot(worktree, card.base_commit)
        if expected_tree != snap.tree:
            raise Conflict("the worktree changed since that diff was shown; review it again", tree=snap.tree)
        who = await ctx.repo.identity(self.settings.git_author_name, self.settings.git_author_email)
        return await ctx.repo.plan_landing(attempt.branch, card.base_commit, snap.tree,
                                           message or default_message(card, attempt), who,
                                           card.base_branch if merge else None,
                                           f"Merge {attempt.branch}: {card.title}")

    async def recover(self) -> list[str]:
        """At start-up: finish every landing a daemon death interrupted; what was repaired, in words."""
        reports = []
        for entry in self.journal.unfinished():
            reports.append(await self._recover(entry))
        return reports

    async def _recover(self, entry: OpenLanding) -> str:
        try:
            ctx = await open_attempt(self.store, self.repositories, entry.attempt_id)
        except KilodError as exc:
            self.journal.finish(entry.attempt_id, f"not repaired: {exc}")
            return f"landing of {entry.attempt_id} not repaired: {exc}"
        async with self.locks.of(ctx.attempt):
            try:
                done = await ctx.repo.repair_landing(entry.plan, entry.target)
            except KilodError as exc:
                message = f"a restart interrupted this attempt's landing, and kilod could not finish it: {exc}"
                self.lifecycle.record(entry.attempt_id, EventKind.LOG, {"message": message, "level": "error"})
                log.error("landing of %s: %s", entry.attempt_id, message, extra={"attempt_id": entry.attempt_id})
                self.journal.finish(entry.attempt_id, message)
                return message
            attempt = self.store.get_attempt(entry.attempt_id)
            if attempt.state == State.REVIEW:
                attempt = self.lifecycle.transition(attempt.id, State.APPROVED, landed_commit=entry.plan.commit)
                done.append("recorded the attempt as approved")
            message = ("the daemon stopped in the middle of landing this attempt; on restart kilod "
                       + ("; ".join(done) if done else "found the landing complete"))
            self.lifecycle.record(attempt.id, EventKind.LOG, {"message": message, "repaired": done})
            log.warning("landing of %s repaired: %s", attempt.id, message, extra={"attempt_id": attempt.id})
            self.journal.finish(attempt.id, message)
            try:
                await self._clean_after(attempt, ctx.card, ctx.repo)
            except KilodError as exc:  # the reconciler and a later discard remove what is left
                log.warning("cleaning up after %s: %s", attempt.id, exc, extra={"attempt_id": attempt.id})
        return message

    def _record(self, attempt: Attempt, plan: LandingPlan, merged: MergeResult | None) -> Attempt:
        attempt = self.lifecycle.transition(attempt.id, State.APPROVED, landed_commit=plan.commit)
        message = f"committed {plan.commit[:12]} on {attempt.branch}"
        if merged is not None:
            message += f"; merged into {merged.branch} ({'fast-forward' if merged.fast_forward else 'merge commit'})"
        self.lifecycle.record(attempt.id, EventKind.LOG, {"message": message})
        return attempt

    async def _clean_after(self, approved: Attempt, card: Card, repo: Repository) -> list[str]:
        """The approved attempt's container and worktree go (its branch stays); its siblings are discarded."""
        await self._clean(approved, repo, keep_branch=True)
        discarded = []
        for sibling in self.store.attempts_of(card.id):
            if sibling.id != approved.id and sibling.state not in (State.APPROVED, State.DISCARDED):
                await self._discard(sibling, repo)
                discarded.append(sibling.id)
        return discarded

    async def discard(self, attempt_id: str) -> Attempt:
        ctx = await open_attempt(self.store, self.repositories, attempt_id)
        async with self.locks.of(ctx.attempt):
            attempt = self.store.get_attempt(attempt_id)
            if attempt.state == State.APPROVED:
                raise Conflict(f"attempt {attempt.id} is approved; its branch {attempt.branch} stays")
            await self._discard(attempt, ctx.repo)
        return self.store.get_attempt(attempt_id)

    async def _discard(self, attempt: Attempt, repo: Repository) -> None:
        if attempt.state in LIVE_STATES:
            await self.stop(attempt.id)
            attempt = self.store.get_attempt(attempt.id)
        if attempt.state != State.DISCARDED:
            self.lifecycle.transition(attempt.id, State.DISCARDED)
        await self._clean(attempt, repo, keep_branch=False)

    async def _clean(self, attempt: Attempt, repo: Repository, keep_branch: bool) -> None:
        """Remove the container, the worktree and (unless kept) the branch; already-gone is fine."""
        await asyncio.to_thread(self.sandbox.remove, container_name(attempt.id))
        await repo.remove_worktree(Path(attempt.worktree), None if keep_branch else attempt.branch)


def default_message(card: Card, attempt: Attempt) -> str:
    body = (attempt.summary or "").strip()
    trailer = f"kilod-attempt: {attempt.id}\nkilod-model: {attempt.model}"
    return f"{card.title}\n\n{body}\n\n{trailer}\n" if body else f"{card.title}\n\n{trailer}\n"
