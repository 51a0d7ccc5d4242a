"""Runs one attempt through the steps, from the one stored, each move stored before the next begins.

A restarted daemon calls `run` again for every attempt holding a slot; it continues
at the stored step, and every step adopts what an interrupted run left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from kilod.domain import LIVE_STATES, Attempt, Card, EventKind, State, Step
from kilod.errors import Conflict, KilodError
from kilod.git.repository import Repositories, Repository
from kilod.pipeline.agent import Agent, AgentStep
from kilod.pipeline.base import Outcome, PipelineStep, Services, StepContext
from kilod.pipeline.checks import ChecksStep
from kilod.pipeline.container import ContainerStep, ensure_container
from kilod.pipeline.review import ReviewStep
from kilod.pipeline.setup import SetupStep
from kilod.pipeline.worktree import WorktreeStep
from kilod.repo_settings import RepoSettings

log = logging.getLogger(__name__)


def default_steps(agents: Mapping[str, Agent] | None = None) -> tuple[PipelineStep, ...]:
    return (WorktreeStep(), ContainerStep(), SetupStep(), AgentStep(agents), ChecksStep(), ReviewStep())


class Pipeline:
    def __init__(self, services: Services, repositories: Repositories,
                 steps: tuple[PipelineStep, ...] | None = None) -> None:
        self.services = services
        self.lifecycle = services.lifecycle
        self.store = services.lifecycle.store
        self.metrics = services.metrics
        self.repositories = repositories
        self.steps = steps if steps is not None else default_steps()

    async def run(self, attempt_id: str) -> None:
        try:
            await self._run(attempt_id)
        except asyncio.CancelledError:
            raise  # daemon stopping: the stored step is where the next start picks up
        except KilodError as exc:
            self._count_error(exc.reason)
            self._fail(attempt_id, str(exc))
        except Exception as exc:  # a bug must fail the attempt, not kill the scheduler
            log.exception("attempt %s crashed", attempt_id, extra={"attempt_id": attempt_id})
            self._count_error(KilodError.reason)
            self._fail(attempt_id, f"internal error: {type(exc).__name__}: {exc}")

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
            attempt = self.lifecycle.transition(attempt.id, State.STARTING, step=self.steps[0].step)
        repo = await self.repositories.open(card.repo)
        ctx = StepContext(self.services, attempt, card, repo, RepoSettings.model_validate(card.settings))
        names = [s.step for s in self.steps]
        if attempt.step not in names:
            raise Conflict(f"attempt {attempt.id} stands at step '{attempt.step}', which this daemon does not run")
        for index in range(names.index(attempt.step), len(self.steps)):
            step = self.steps[index]
            if step.needs_container and ctx.container_id is None:
                await self._container_running(ctx)
            outcome = await step.run(ctx)
            following = self.steps[index + 1].step if index + 1 < len(self.steps) else step.step
            ctx.attempt = await self._move(ctx.attempt, following, outcome)

    async def _container_running(self, ctx: StepContext) -> None:
        """Steps from here run in the container: after a restart it may have stopped or gone."""
        container_id = await ensure_container(self.services, ctx.attempt, ctx.card, ctx.repo)
        if ctx.attempt.state == State.STARTING:
            ctx.attempt = self.lifecycle.transition(ctx.attempt.id, State.RUNNING, container_id=container_id)
        elif container_id != ctx.attempt.container_id:
            ctx.attempt = await self._move(ctx.attempt, ctx.attempt.step,
                                           Outcome("sandbox container recreated", {"container_id": container_id}))
        ctx.container_id = container_id

    async def _move(self, attempt: Attempt, step: Step, outcome: Outcome) -> Attempt:
        """Store the move to `step` with the outcome: a state change, a logged line, or just the fields."""
        if outcome.state is not None:
            return self.lifecycle.transition(attempt.id, outcome.state, step=step, **outcome.fields)
        event = None if outcome.message is None else (EventKind.LOG, {"message": outcome.message, "step": str(step)})
        published = await self.store.update_attempt_async(attempt.id, event, step=step, **outcome.fields)
        if published is not None:
            self.lifecycle.events.publish(published)
        return self.store.get_attempt(attempt.id)
