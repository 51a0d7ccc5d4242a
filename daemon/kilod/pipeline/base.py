"""What a pipeline step is, and what it is given.

A step does one job for one attempt and says how it went in an `Outcome`; the
runner stores the move to the next step (with the outcome's fields, log line or
state change) in one transaction, so a restarted daemon continues at the first
step not yet done. Every step must be safe to run again: adopt what exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, Protocol, runtime_checkable

from kilod.agent.early import EarlyCall
from kilod.agent.models import Models
from kilod.config import Settings
from kilod.container_guard import ContainerWatch
from kilod.domain import Attempt, Card, State, Step
from kilod.environments.attach import Environments
from kilod.errors import Conflict
from kilod.git.repository import Repository
from kilod.lifecycle import Lifecycle
from kilod.metrics import Metrics
from kilod.repo_settings import RepoSettings
from kilod.sandbox.base import Sandbox


@dataclass(frozen=True)
class Services:
    """What steps use; the same for every attempt."""

    settings: Settings
    lifecycle: Lifecycle
    sandbox: Sandbox
    models: Models
    metrics: Metrics | None = None
    environments: Environments | None = None  # images, caches, CA, egress; None: kilod's sandbox image, bare

    @cached_property
    def containers(self) -> ContainerWatch:
        """One watch over every running attempt's container (one list a second, not an inspect per attempt)."""
        return ContainerWatch(partial(self.sandbox.running_ids, self.settings.instance), self.sandbox.is_running)


@dataclass
class StepContext:
    """One attempt's run through the pipeline."""

    services: Services
    attempt: Attempt
    card: Card
    repo: Repository
    repo_settings: RepoSettings       # the card's .kilod.toml, as validated when it was made
    container_id: str | None = None   # set once the attempt's container is known to run
    early: EarlyCall | None = None    # the model's first call, sent while the container starts

    def container(self) -> str:
        if self.container_id is None:
            raise Conflict(f"attempt {self.attempt.id} has no running container at step {self.attempt.step}")
        return self.container_id


@dataclass(frozen=True)
class Outcome:
    message: str | None = None         # logged with the move to the next step (None: move silently)
    fields: dict[str, Any] = field(default_factory=dict)   # attempt fields stored with the move
    state: State | None = None         # a state change made with the move
    goto: Step | None = None           # go back to this step instead of on (checks → agent for a fix round)
    to_agent: dict[str, Any] | None = None   # a conversation message stored with the move


class PipelineStep(Protocol):
    step: Step                # where the attempt stands while this runs
    needs_container: bool     # the runner makes sure the container runs before this step

    async def run(self, ctx: StepContext) -> Outcome: ...


@runtime_checkable
class StartsEarly(Protocol):
    """A step with work that needs no container: the runner begins it while the container starts."""

    def start_early(self, ctx: StepContext) -> None: ...
