"""The pipeline walks its steps as data, from the stored step, with a real repository and store (no Docker)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kilod.agent.early import EarlyCall
from kilod.agent.models import Completion, Models
from kilod.config import Settings
from kilod.domain import EventKind, State, Step
from kilod.errors import Invalid
from kilod.git.repository import Repositories
from kilod.lifecycle import Lifecycle
from kilod.metrics import Metrics
from kilod.pipeline.base import Outcome, PipelineStep, Services, StepContext
from kilod.pipeline.review import ReviewStep
from kilod.pipeline.runner import Pipeline, default_steps
from kilod.pipeline.worktree import WorktreeStep
from kilod.sandbox.docker import DockerSandbox
from kilod.store import Store
from tests.daemon.records import make_attempts, make_card
from tests.kilod_testing import git


@dataclass
class Recording:
    """A step that notes what it saw; stands where the container and agent steps would."""

    step: Step
    needs_container: bool = False
    seen: list[tuple[Step, State]] = field(default_factory=list)
    fail: bool = False

    async def run(self, ctx: StepContext) -> Outcome:
        self.seen.append((ctx.attempt.step, ctx.attempt.state))
        if self.fail:
            raise Invalid("the recording step was told to fail")
        (Path(ctx.attempt.worktree) / "work.txt").write_text("done by a step\n")
        if ctx.attempt.state == State.STARTING:
            return Outcome(state=State.RUNNING)
        return Outcome("recorded", {"summary": "recorded"})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", network=False)


def pipeline_with(steps: tuple[PipelineStep, ...], lifecycle: Lifecycle, settings: Settings,
                  metrics: Metrics | None = None) -> Pipeline:
    services = Services(settings, lifecycle, DockerSandbox(), Models(None, timeout=30), metrics)
    return Pipeline(services, Repositories(), steps)


def queued(store: Store, repo: Path, settings: Settings) -> str:
    card = make_card(repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())
    attempt = make_attempts(card, worktrees=str(settings.worktrees_dir))[0]
    store.insert_card(card, [attempt])
    return attempt.id


def test_the_default_chain_is_every_step_in_order() -> None:
    assert [s.step for s in default_steps()] == list(Step)


async def test_a_step_is_an_object_in_the_chain(store: Store, lifecycle: Lifecycle, settings: Settings,
                                                repo: Path) -> None:
    added = Recording(Step.AGENT)
    attempt_id = queued(store, repo, settings)

    await pipeline_with((WorktreeStep(), added, ReviewStep()), lifecycle, settings).run(attempt_id)

    attempt = store.get_attempt(attempt_id)
    assert (attempt.state, attempt.step, attempt.error) == (State.REVIEW, Step.REVIEW, None)
    assert added.seen == [(Step.AGENT, State.STARTING)]
    assert git(repo, "rev-parse", f"{attempt.review_tree}:work.txt")  # the review tree holds the step's work
    messages = [e.payload.get("message") for e in store.events_of(attempt_id) if e.kind == EventKind.LOG]
    assert any(str(m).startswith("worktree ready at") for m in messages)
    states = [e.payload["to"] for e in store.events_of(attempt_id) if e.kind == EventKind.STATE]
    assert states == ["queued", "starting", "running", "review"]


async def test_a_restart_continues_at_the_stored_step(store: Store, lifecycle: Lifecycle, settings: Settings,
                                                      repo: Path) -> None:
    first, second = Recording(Step.AGENT), Recording(Step.CHECKS)
    attempt_id = queued(store, repo, settings)
    pipeline = pipeline_with((WorktreeStep(), first, second, ReviewStep()), lifecycle, settings)
    await pipeline.run(attempt_id)
    lifecycle.follow_up(attempt_id, {"role": "user", "content": "again"}, [], step=Step.CHECKS, finished_at=None)

    await pipeline.run(attempt_id)

    assert first.seen == [(Step.AGENT, State.STARTING)]   # not run again
    assert second.seen == [(Step.CHECKS, State.RUNNING), (Step.CHECKS, State.RUNNING)]
    assert store.get_attempt(attempt_id).state == State.REVIEW


async def test_a_failing_step_fails_the_attempt_and_counts_its_reason(store: Store, lifecycle: Lifecycle,
                                                                     settings: Settings, repo: Path) -> None:
    metrics = Metrics(store)
    attempt_id = queued(store, repo, settings)

    await pipeline_with((WorktreeStep(), Recording(Step.AGENT, fail=True), ReviewStep()), lifecycle, settings,
                        metrics).run(attempt_id)

    attempt = store.get_attempt(attempt_id)
    assert (attempt.state, attempt.step) == (State.FAILED, Step.AGENT)
    assert attempt.error == "the recording step was told to fail"
    assert b'kilod_errors_total{reason="invalid"} 1.0' in metrics.render()


async def test_a_stored_step_this_daemon_does_not_run_fails_clearly(store: Store, lifecycle: Lifecycle,
                                                                    settings: Settings, repo: Path) -> None:
    attempt_id = queued(store, repo, settings)

    await pipeline_with((WorktreeStep(), Recording(Step.AGENT), ReviewStep()), lifecycle, settings).run(attempt_id)
    lifecycle.follow_up(attempt_id, {"role": "user", "content": "again"}, [], step=Step.AGENT, finished_at=None)
    await pipeline_with((WorktreeStep(), ReviewStep()), lifecycle, settings).run(attempt_id)

    attempt = store.get_attempt(attempt_id)
    assert attempt.state == State.FAILED
    assert attempt.error is not None and "step 'agent'" in attempt.error


@dataclass
class StartingEarly(Recording):
    """An agent-like step that begins a call while the container starts; the call never ends by itself."""

    started_at: list[Step] = field(default_factory=list)
    call: EarlyCall | None = None

    def start_early(self, ctx: StepContext) -> None:
        self.started_at.append(ctx.attempt.step)

        async def unanswered() -> Completion:
            await asyncio.Event().wait()
            raise AssertionError("never answered")

        self.call = ctx.early = EarlyCall([], asyncio.create_task(unanswered()))


async def test_a_step_that_starts_early_begins_when_the_container_step_does_and_is_stopped_if_not_taken(
        store: Store, lifecycle: Lifecycle, settings: Settings, repo: Path) -> None:
    agent = StartingEarly(Step.AGENT, fail=True)   # fails before it takes the call
    container = Recording(Step.CONTAINER)
    attempt_id = queued(store, repo, settings)

    await pipeline_with((WorktreeStep(), container, agent, ReviewStep()), lifecycle, settings).run(attempt_id)

    assert agent.started_at == [Step.CONTAINER] and container.seen == [(Step.CONTAINER, State.STARTING)]
    assert agent.call is not None and agent.call.task.cancelled()   # nobody took it: the call was stopped
    assert store.get_attempt(attempt_id).state == State.FAILED
