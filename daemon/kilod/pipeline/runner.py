"""Runs one attempt through the steps, from the one stored, each move stored before the next begins.

A restarted daemon calls `run` again for every attempt holding a slot; it continues
at the stored step, and every step adopts what an interrupted run left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from functools import partial

from kilod.diskspace import WAIT_FOR_SPACE, DiskFull, DiskGuard, Held, is_disk_full, persist
from kilod.domain import DISK_FULL_PAUSE, LIVE_STATES, SLOT_STATES, Attempt, Card, EventKind, State, Step
from kilod.environments.attach import allowlist_of
from kilod.environments.refusals import RefusalWatch
from kilod.errors import Conflict, KilodError
from kilod.git.repository import Repositories, Repository
from kilod.pipeline.agent import Agent, AgentStep
from kilod.pipeline.base import Outcome, PipelineStep, Services, StartsEarly, StepContext
from kilod.pipeline.checks import ChecksStep
from kilod.pipeline.container import ContainerStep, ensure_container
from kilod.pipeline.image import ImageStep
from kilod.pipeline.install import InstallStep
from kilod.pipeline.review import ReviewStep
from kilod.pipeline.setup import SetupStep
from kilod.pipeline.worktree import WorktreeStep
from kilod.repo_settings import RepoSettings

log = logging.getLogger(__name__)


def default_steps(agents: Mapping[str, Agent] | None = None) -> tuple[PipelineStep, ...]:
    return (WorktreeStep(), ImageStep(), InstallStep(), ContainerStep(), SetupStep(), AgentStep(agents),
            ChecksStep(), ReviewStep())


class Pipeline:
    def __init__(self, services: Services, repositories: Repositories,
                 steps: tuple[PipelineStep, ...] | None = None) -> None:
        self.services = services
        self.lifecycle = services.lifecycle
        self.store = services.lifecycle.store
        self.metrics = services.metrics
        self.repositories = repositories
        self.steps = steps if steps is not None else default_steps()
        self.disk = DiskGuard(services.settings.data_dir, services.settings.min_free_bytes)

    async def run(self, attempt_id: str) -> None:
        watch = self._watch_refusals(attempt_id)
        try:
            await self._run_resuming(attempt_id)
        finally:
            if watch is not None:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)

    def _watch_refusals(self, attempt_id: str) -> asyncio.Task[None] | None:
        """While an attempt with an egress allowlist runs: an event and a count per refused request."""
        environments = self.services.environments
        try:
            attempt = self.store.get_attempt(attempt_id)
            if environments is None or allowlist_of(self.store.get_card(attempt.card_id).settings) is None:
                return None
            watch = RefusalWatch.for_attempt(environments.egress, self.lifecycle, self.metrics, attempt_id)
        except Exception:  # best effort: the attempt runs (and fails loudly) without it
            log.exception("cannot watch the egress proxy of %s", attempt_id, extra={"attempt_id": attempt_id})
            return None
        return asyncio.create_task(watch.run(), name=f"egress-{attempt_id}")

    async def _run_resuming(self, attempt_id: str) -> None:
        # a full disk anywhere below (the agent loop's writes included) pauses this attempt and waits
        WAIT_FOR_SPACE.set(partial(self._wait_for_space, attempt_id))
        attempt = self.store.get_attempt(attempt_id)
        if attempt.state == State.PAUSED:  # paused when the daemon stopped
            if not attempt.waits_for_disk:
                return  # a person's pause: only POST /resume continues it
            if not await self._resume_when_space(attempt_id):
                return
        while True:
            try:
                await self._run(attempt_id)
                return
            except asyncio.CancelledError:
                raise  # daemon stopping: the stored step is where the next start picks up
            except Exception as exc:
                if not is_disk_full(exc):
                    await persist(partial(self._failed, attempt_id, exc))
                    return
                # the step that met the full disk runs again from its stored start once space is back
                self._count_error(DiskFull.reason)
                await self._wait_for_space(attempt_id, exc)
                state = self.store.get_attempt(attempt_id).state
                if state not in LIVE_STATES or state == State.PAUSED:
                    return  # cancelled while it waited (or paused by a person: POST /resume continues it)

    def _failed(self, attempt_id: str, exc: Exception) -> None:
        if isinstance(exc, KilodError):
            self._count_error(exc.reason)
            self._fail(attempt_id, str(exc))
        else:  # a bug must fail the attempt, not kill the scheduler
            log.exception("attempt %s crashed", attempt_id, exc_info=exc, extra={"attempt_id": attempt_id})
            self._count_error(KilodError.reason)
            self._fail(attempt_id, f"internal error: {type(exc).__name__}: {exc}")

    async def _wait_for_space(self, attempt_id: str, exc: BaseException, held: Held | None = None) -> bool:
        """Pause the attempt (state and reason visible), wait until the disk has room, resume it.

        `held`: a write of something that already happened (a tool's result), tried once more
        right after the reserve is freed; True if it was written.
        """
        self.disk.met_full(f"attempt {attempt_id}", exc)
        written = False
        if held is not None:
            with contextlib.suppress(DiskFull):
                await held()
                written = True
        attempt = self.store.get_attempt(attempt_id)
        if attempt.state == State.RUNNING:
            reason = f"{DISK_FULL_PAUSE}: {self.disk.describe()}; it resumes when space is freed"
            # if not even the reserve was enough, the pause lives in this task until space is back
            with contextlib.suppress(DiskFull):
                self.lifecycle.transition(attempt_id, State.PAUSED, error=reason)
        await self._resume_when_space(attempt_id)
        return written

    async def _resume_when_space(self, attempt_id: str) -> bool:
        """Wait for room, then move a disk-paused attempt back to running; False if it should not go on.

        Only the disk's pause is undone here: a person's pause (or a cancel) made meanwhile stays.
        """
        while True:
            await self.disk.wait_for_space(f"attempt {attempt_id}")
            try:
                attempt = self.store.get_attempt(attempt_id)
                if attempt.waits_for_disk:
                    attempt = self.lifecycle.transition(attempt_id, State.RUNNING, error=None)
                return attempt.state in LIVE_STATES and attempt.state != State.PAUSED
            except DiskFull as again:
                self.disk.met_full(f"attempt {attempt_id}", again)

    async def ensure_container(self, attempt: Attempt, card: Card, repo: Repository) -> str:
        """Make sure an attempt's container runs (for a shell, say); its id."""
        return await ensure_container(self.services, attempt, card, repo)

    def _count_error(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(reason).inc()

    def _fail(self, attempt_id: str, message: str) -> None:
        attempt = self.store.get_attempt(attempt_id)
        if attempt.state in LIVE_STATES:
            self.lifecycle.transition(attempt_id, State.FAILED, error=message)

    async def _run(self, attempt_id: str) -> None:
        attempt = self.store.get_attempt(attempt_id)
        card = self.store.get_card(attempt.card_id)
        if attempt.state == State.QUEUED:
            attempt = await self.lifecycle.transition_async(attempt.id, State.STARTING, step=self.steps[0].step)
        repo = await self.repositories.open(card.repo)
        ctx = StepContext(self.services, attempt, card, repo, RepoSettings.model_validate(card.settings))
        names = [s.step for s in self.steps]
        if attempt.step not in names:
            raise Conflict(f"attempt {attempt.id} stands at step '{attempt.step}', which this daemon does not run")
        index = names.index(attempt.step)
        try:
            await self._walk(ctx, index)
        finally:
            if ctx.early is not None:   # begun while the container started, and not taken: stop it
                await ctx.early.drop()

    async def _walk(self, ctx: StepContext, index: int) -> None:
        names = [s.step for s in self.steps]
        while index < len(self.steps):
            step = self.steps[index]
            if step.needs_container and ctx.container_id is None:
                await self._container_running(ctx)
            if step.step == Step.CONTAINER:   # Docker's start takes a while: later steps may begin what needs none
                for later in self.steps[index + 1:]:
                    if isinstance(later, StartsEarly):
                        later.start_early(ctx)
            outcome = await step.run(ctx)
            if outcome.goto is not None:   # sent back (a fix round, a pause): stored like any move
                index = names.index(outcome.goto)
                ctx.attempt = await self._move(ctx.attempt, outcome.goto, outcome)
                if ctx.attempt.state not in SLOT_STATES:
                    return   # paused: a resume starts the pipeline again at the stored step
                continue
            following = self.steps[index + 1].step if index + 1 < len(self.steps) else step.step
            ctx.attempt = await self._move(ctx.attempt, following, outcome)
            index += 1

    async def _container_running(self, ctx: StepContext) -> None:
        """Steps from here run in the container: after a restart it may have stopped or gone."""
        container_id = await ensure_container(self.services, ctx.attempt, ctx.card, ctx.repo)
        if ctx.attempt.state == State.STARTING:
            ctx.attempt = await self.lifecycle.transition_async(ctx.attempt.id, State.RUNNING,
                                                                container_id=container_id)
        elif container_id != ctx.attempt.container_id:
            ctx.attempt = await self._move(ctx.attempt, ctx.attempt.step,
                                           Outcome("sandbox container recreated", {"container_id": container_id}))
        ctx.container_id = container_id

    async def _move(self, attempt: Attempt, step: Step, outcome: Outcome) -> Attempt:
        """Store the move to `step` with the outcome: a state change, a logged line, or just the fields."""
        if outcome.state is not None:
            return await self.lifecycle.transition_async(attempt.id, outcome.state, step=step, **outcome.fields)
        event = None if outcome.message is None else (EventKind.LOG, {"message": outcome.message, "step": str(step)})
        published = await self.store.update_attempt_async(attempt.id, event, message=outcome.to_agent, step=step,
                                                          **outcome.fields)
        if published is not None:
            self.lifecycle.events.publish(published)
        return self.store.get_attempt(attempt.id)
