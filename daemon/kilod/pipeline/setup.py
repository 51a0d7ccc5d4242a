"""The repository's setup commands (`.kilod.toml` `setup`), before the agent starts."""

from __future__ import annotations

from kilod.domain import EventKind, Step
from kilod.errors import Invalid
from kilod.pipeline.base import Outcome, StepContext
from kilod.pipeline.commands import run_command
from kilod.pipeline.output import LiveOutput


class SetupStep:
    step = Step.SETUP
    needs_container = True

    async def run(self, ctx: StepContext) -> Outcome:
        commands = ctx.repo_settings.setup
        lifecycle = ctx.services.lifecycle
        settings = ctx.services.settings
        for command in commands:
            label = {"step": str(Step.SETUP), "command": command}
            # said before it runs: a long setup shows what it is waiting for, then its output as it comes
            await lifecycle.record_async(ctx.attempt.id, EventKind.LOG, {**label, "status": "running",
                                                                         "message": f"setup: {command}"})
            live = LiveOutput(lifecycle, ctx.attempt.id, label, settings.command_output_limit)
            result = await run_command(ctx.services.sandbox, ctx.container(), command, settings.setup_timeout, live)
            await lifecycle.record_async(ctx.attempt.id, EventKind.LOG, {
                "step": "setup", "command": command, **result,
                "message": f"setup {result['status']} (exit {result['exit_code']}): {command}"})
            if result["status"] != "passed":
                raise Invalid(f"setup command failed ({result['status']}, exit {result['exit_code']}): "
                              f"{command}\n{result['output_tail'][-1000:]}")
        return Outcome("setup done" if commands else "no setup commands")
