"""The attempt's sandbox container: made (or adopted) from a spec, the worktree mounted into it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

from kilod.agents.runner import agent_mounts
from kilod.domain import Attempt, Card, State, Step, container_name
from kilod.errors import Conflict
from kilod.git.repository import Repository
from kilod.pipeline.base import Outcome, Services, StepContext
from kilod.pipeline.image import sandbox_image
from kilod.sandbox.base import ContainerSpec, MountSpec


def container_spec(services: Services, attempt: Attempt, card: Card, repo: Repository,
                   mounts: tuple[MountSpec, ...] = ()) -> ContainerSpec:
    settings = services.settings
    uid, gid = settings.sandbox_owner
    worktree = Path(attempt.worktree)
    return ContainerSpec(
        name=container_name(attempt.id),
        image=settings.sandbox_image,
        attempt_id=attempt.id,
        card_id=card.id,
        instance=settings.instance,
        uid=uid,
        gid=gid,
        worktree=str(worktree),
        git_pointer=str(worktree / ".git"),
        repo_git_dir=str(repo.common_dir),
        network=card.network,
        memory_limit=settings.memory_limit,
        cpu_limit=settings.cpu_limit,
        pids_limit=settings.pids_limit,
        mounts=mounts,
    )


async def ensure_container(services: Services, attempt: Attempt, card: Card, repo: Repository) -> str:
    """Make sure the attempt's container runs; its id. Refuses a worktree whose .git pointer was changed."""
    # the pointer file must say what git wrote, whatever the worktree holds now
    worktree = Path(attempt.worktree)
    if not repo.pointer_is_intact(worktree):
        raise Conflict(f"the worktree's .git pointer at {worktree / '.git'} was changed; refusing to mount it")
    image = await sandbox_image(services, attempt, card, repo)
    # the rest in one thread: each hop back to the loop waits for the GIL, and this is every start's path
    return await asyncio.to_thread(_made_and_started, services, attempt, card, repo, image)


def _made_and_started(services: Services, attempt: Attempt, card: Card, repo: Repository, image: str) -> str:
    # an agent CLI and its state (kilod.agents): a Python agent's venv for this image's python3
    mounts = agent_mounts(services.settings, attempt, image, card.repo)
    spec = replace(container_spec(services, attempt, card, repo, tuple(mounts)), image=image)
    if services.environments is not None:  # the repository's caches, CA files, egress network
        attached = services.environments.attach(attempt.id, card.id, card.repo, image, card.settings, spec.uid,
                                                spec.gid)
        spec = replace(spec, mounts=(*spec.mounts, *attached.mounts), env={**spec.env, **attached.env},
                       network_mode=attached.network_name)
    return services.sandbox.ensure(spec)


class ContainerStep:
    step = Step.CONTAINER
    needs_container = False   # it is the step that makes it

    async def run(self, ctx: StepContext) -> Outcome:
        started = time.monotonic()
        ctx.container_id = await ensure_container(ctx.services, ctx.attempt, ctx.card, ctx.repo)
        if ctx.services.metrics is not None:
            ctx.services.metrics.container_start.observe(time.monotonic() - started)
        return Outcome(state=State.RUNNING, fields={"container_id": ctx.container_id})
