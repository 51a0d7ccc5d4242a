"""The repository's checks (`.kilod.toml` `checks`), after the agent: each recorded for review."""

from __future__ import annotations

import asyncio

from kilod.container_guard import removed
from kilod.domain import EventKind, Step
from kilod.pipeline.base import Outcome, StepContext
from kilod.pipeline.commands import run_command


class ChecksStep:
    step = Step.CHECKS
    needs_container = True

    async def run(self, ctx: StepContext) -> Outcome:
        services, attempt = ctx.services, ctx.attempt
        for index, check in enumerate(ctx.repo_settings.checks):
            timeout = check.timeout or services.settings.check_timeout
            services.lifecycle.record(attempt.id, EventKind.LOG, {
                "step": "checks", "name": check.name, "command": check.run, "status": "running",
                "message": f"check {check.name}: {check.run}"})
            result = await run_command(services.sandbox, ctx.container(), check.run, timeout)
            services.lifecycle.events.publish(services.lifecycle.store.record_check(
                attempt.id, attempt.run, index, {"name": check.name, "command": check.run, **result}))
            if services.metrics is not None:
                services.metrics.checks.labels(result["status"]).inc()
        if not await asyncio.to_thread(services.sandbox.is_running, ctx.container()):
            raise removed(ctx.container())  # gone since the agent finished: never a silent Review
        return Outcome()
