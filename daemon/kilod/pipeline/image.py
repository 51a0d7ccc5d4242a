"""The attempt's sandbox image: the repository's own (pulled, or built once per content hash) or kilod's.

Its build log streams to the attempt's events while the attempt stands at step
`image` ("building image …"); a failed build fails the attempt with the log's tail.
"""

from __future__ import annotations

import asyncio

from kilod.domain import Attempt, Card, EventKind, Step
from kilod.environments.buildlog import BuildLog
from kilod.git.repository import Repository
from kilod.pipeline.base import Outcome, Services, StepContext


async def sandbox_image(services: Services, attempt: Attempt, card: Card, repo: Repository) -> str:
    environments = services.environments
    if environments is None:
        return services.settings.sandbox_image

    def record(text: str) -> None:
        services.lifecycle.record(attempt.id, EventKind.LOG, {"step": str(Step.IMAGE), "message": text})

    log = BuildLog(asyncio.get_running_loop(), record)
    try:
        return await asyncio.to_thread(environments.ensure_image, card, repo.paths, log)
    finally:
        log.flush()


class ImageStep:
    step = Step.IMAGE
    needs_container = False

    async def run(self, ctx: StepContext) -> Outcome:
        for note in ctx.repo_settings.environment_notes:
            ctx.services.lifecycle.record(ctx.attempt.id, EventKind.LOG, {"step": str(Step.IMAGE), "message": note})
        image = await sandbox_image(ctx.services, ctx.attempt, ctx.card, ctx.repo)
        return Outcome(f"sandbox image {image}")
