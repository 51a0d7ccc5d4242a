"""Commands on one attempt: cancel it, retry it, send it a follow-up, open a shell in its container."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kilod.agent.pause import compose_resume
from kilod.agents.catalog import BUILTIN
from kilod.config import Settings
from kilod.diskspace import DiskGuard
from kilod.domain import LIVE_STATES, Attempt, Card, EventKind, State, Step, container_name, now, queued_attempt
from kilod.errors import Conflict
from kilod.git.repository import Repositories, Repository
from kilod.lifecycle import Lifecycle
from kilod.review.context import CardLocks, Stop, open_attempt

HUMAN_CHANGE_LIMIT = 8000

# Makes sure the attempt's container runs (creating or adopting it); its id.
Containers = Callable[[Attempt, Card, Repository], Awaitable[str]]


class FollowUpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # strict: report a wrong type, never coerce it
    text: str = Field(min_length=1, max_length=200_000)


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, max_length=200_000)


class Commands:
    def __init__(self, settings: Settings, lifecycle: Lifecycle, repositories: Repositories,
                 containers: Containers, stop: Stop, kick: Callable[[], None], locks: CardLocks) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.repositories = repositories
        self.containers = containers
        self.stop = stop
        self.kick = kick
        self.locks = locks

    async def cancel(self, attempt_id: str) -> Attempt:
        attempt = self.store.get_attempt(attempt_id)
        if attempt.state not in LIVE_STATES:
            raise Conflict(f"only a queued, starting, running or paused attempt can be cancelled; {attempt.id} is "
                           f"{attempt.state}")
        await self.stop(attempt.id)
        return self.store.get_attempt(attempt.id)

    async def pause(self, attempt_id: str) -> Attempt:
        """Ask the agent to stop after its current tool call; the attempt then waits in `paused`, container up."""
        attempt = self.store.get_attempt(attempt_id)
        if attempt.state != State.RUNNING or attempt.step != Step.AGENT:
            raise Conflict(f"only an attempt whose agent is at work can be paused; {attempt.id} is {attempt.state} "
                           f"at step {attempt.step}")
        if attempt.agent != BUILTIN:
            # an agent CLI runs its own loop: kilod cannot stop it between two of its tool calls
            raise Conflict(f"only the built-in agent can be paused; {attempt.id} runs {attempt.agent} "
                           "(cancel it, or wait for Review and send a follow-up)")
        # stored, not held in memory: a daemon killed before the agent's next stopping point honours it on start
        event = self.store.request_pause(
            attempt.id, {"message": "pause requested: the agent stops after its current tool call"})
        if event is None:
            moved = self.store.get_attempt(attempt.id)
            raise Conflict(f"only an attempt whose agent is at work can be paused; {moved.id} is {moved.state} "
                           f"at step {moved.step}")
        self.lifecycle.events.publish(event)
        return attempt

    async def resume(self, attempt_id: str, text: str | None) -> Attempt:
        """The paused agent continues, told what the person changed in the worktree and what they said."""
        ctx = await open_attempt(self.store, self.repositories, attempt_id)
        async with self.locks.of(ctx.attempt):
            attempt = self.store.get_attempt(attempt_id)
            if attempt.state != State.PAUSED:
                raise Conflict(f"only a paused attempt can be resumed; {attempt.id} is {attempt.state}")
            if attempt.waits_for_disk:
                # the daemon's pause, not a person's: it ends when the disk has room, not on request
                raise Conflict(f"{attempt.id} was paused because the disk is full, not by a person; it resumes "
                               f"by itself once space is freed ({attempt.error})")
            human = await self._human_changes(attempt, ctx.repo, ctx.worktree())
            message = compose_resume(text, human)
            attempt = self.lifecycle.follow_up(attempt.id, {"role": "user", "content": message}, [],
                                               step=Step.AGENT)
            self.lifecycle.record(attempt.id, EventKind.MESSAGE, {"role": "user", "content": message})
        self.kick()
        return attempt

    async def retry(self, attempt_id: str) -> Attempt:
        ctx = await open_attempt(self.store, self.repositories, attempt_id)
        attempt = ctx.attempt
        if attempt.state in LIVE_STATES:
            raise Conflict(f"attempt {attempt.id} is still {attempt.state}; cancel it first or wait")
        DiskGuard(self.settings.data_dir, self.settings.min_free_bytes).check_floor("another attempt")
        n = max(a.n for a in self.store.attempts_of(attempt.card_id)) + 1
        fresh = queued_attempt(attempt.card_id, n, attempt.model, str(self.settings.worktrees_dir), now(),
                               attempt.runtime, agent=attempt.agent)
        await ctx.repo.require_free_branches([fresh.branch])
        self.lifecycle.events.publish(*self.store.add_attempts([fresh]))
        self.kick()
        return self.store.get_attempt(fresh.id)

    async def follow_up(self, attempt_id: str, text: str) -> Attempt:
        """The agent continues its conversation with `text`, the pending comments and what a person changed."""
        ctx = await open_attempt(self.store, self.repositories, attempt_id)
        async with self.locks.of(ctx.attempt):
            attempt = self.store.get_attempt(attempt_id)
            if attempt.state != State.REVIEW:
                raise Conflict(f"a follow-up needs an attempt in review; {attempt.id} is {attempt.state}")
            worktree = ctx.worktree()
            comments = self.store.comments(attempt.id, pending_only=True)
            human = await self._human_changes(attempt, ctx.repo, worktree)
            message = compose_follow_up(text, comments, human)
            attempt = self.lifecycle.follow_up(
                attempt.id, {"role": "user", "content": message}, [c["id"] for c in comments],
                step=Step.AGENT, summary=None, finished_at=None, stop_reason=None, run=attempt.run + 1,
                # the run that ended keeps its summary; its wait in review is not running time
                summaries=[*attempt.summaries, attempt.summary or ""],
                review_seconds=attempt.review_seconds + max(0.0, now() - (attempt.finished_at or now())),
            )
            self.lifecycle.record(attempt.id, EventKind.MESSAGE, {"role": "user", "content": message})
        self.kick()
        return attempt

    async def _human_changes(self, attempt: Attempt, repo: Repository, worktree: Path) -> str:
        """What changed in the worktree since the agent left it for review, as a (cut) patch."""
        if not attempt.review_tree:
            return ""
        now_tree = (await repo.snapshot(worktree, attempt.review_tree)).tree
        if now_tree == attempt.review_tree:
            return ""
        text = (await repo.diff(attempt.review_tree, now_tree, worktree)).text
        if len(text) > HUMAN_CHANGE_LIMIT:
            text = text[:HUMAN_CHANGE_LIMIT] + "\n[… diff cut …]\n"
        return text

    async def shell_target(self, attempt_id: str) -> dict[str, Any]:
        """Make sure the attempt's container runs, and say how to exec into it."""
        ctx = await open_attempt(self.store, self.repositories, attempt_id)
        attempt = ctx.attempt
        if attempt.state in (State.APPROVED, State.DISCARDED):
            raise Conflict(f"attempt {attempt.id} is {attempt.state}; its container is gone")
        ctx.worktree()
        container_id = await self.containers(attempt, ctx.card, ctx.repo)
        uid, gid = self.settings.sandbox_owner
        return {"container": container_name(attempt.id), "container_id": container_id, "user": f"{uid}:{gid}",
                "workdir": "/workspace", "worktree": attempt.worktree}


def compose_follow_up(text: str, comments: list[dict[str, Any]], human_diff: str) -> str:
    parts = [text.strip()]
    if comments:
        lines = "\n".join(f"- {c['path']}:{c['line']}: {c['text']}" for c in comments)
        parts.append(f"Review comments on your diff:\n{lines}")
    if human_diff:
        parts.append("While you were stopped, a person changed the worktree (diff against what you left):\n"
                     f"```diff\n{human_diff}```")
    return "\n\n".join(p for p in parts if p)
