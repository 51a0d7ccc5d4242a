"""The repository's setup commands (`.kilod.toml` `setup`), before the agent starts."""

from __future__ import annotations

from kilod.domain import EventKind, Step
from kilod.errors import Invalid
from kilod.pipeline.base import Outcome, StepContext
from kilod.pipeline.commands import run_command


class SetupStep:
    step = Step.SETUP
    needs_container = True

    async def run(self, ctx: StepContext) -> Outcome:
        commands = ctx.repo_settings.setup
        lifecycle = ctx.services.lifecycle
        for command in commands:
            # said before it runs: a long setup shows what it is waiting for
            lifecycle.record(ctx.attempt.id, EventKind.LOG, {"step": "setup", "command": command, "status": "running",
                                                             "message": f"setup: {command}"})
            result = await run_command(ctx.services.sandbox, ctx.container(), command,
                                       ctx.services.settings.setup_timeout)
            lifecycle.record(ctx.attempt.id, EventKind.LOG, {
                "step": "setup", "command": command, **result,
                "message": f"setup {result['status']} (exit {result['exit_code']}): {command}"})
            if result["status"] != "passed":
                raise Invalid(f"setup command failed ({result['status']}, exit {result['exit_code']}): "
                              f"{command}\n{result['output_tail'][-1000:]}")
        return Outcome("setup done" if commands else "no setup commands")
