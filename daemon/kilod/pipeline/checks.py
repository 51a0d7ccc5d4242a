"""The repository's checks (`.kilod.toml` `checks`), after the agent: each recorded for review.

Failing checks go back to the agent (their output tails as its next message) for up to
`fix_rounds` rounds, each a new run; then the attempt moves on to Review. The built-in
agent reads the message from its conversation; an agent CLI gets it as a follow-up's
prompt (kilod.agents.step), resuming its own session where it has one.
"""

from __future__ import annotations

import asyncio

from kilod.agent.feedback import FIX_ROUND, fix_round_message
from kilod.container_guard import removed
from kilod.domain import EventKind, Step
from kilod.pipeline.agent import BUILTIN
from kilod.pipeline.base import Outcome, StepContext
from kilod.pipeline.commands import run_command
from kilod.pipeline.output import LiveOutput


class ChecksStep:
    step = Step.CHECKS
    needs_container = True

    async def run(self, ctx: StepContext) -> Outcome:
        services, attempt = ctx.services, ctx.attempt
        store = services.lifecycle.store
        results = []
        for index, check in enumerate(ctx.repo_settings.checks):
            timeout = check.timeout or services.settings.check_timeout
            label = {"step": str(Step.CHECKS), "name": check.name, "command": check.run}
            await services.lifecycle.record_async(attempt.id, EventKind.LOG, {
                **label, "status": "running", "message": f"check {check.name}: {check.run}"})
            live = LiveOutput(services.lifecycle, attempt.id, label, services.settings.command_output_limit)
            result = {"name": check.name, "command": check.run,
                      **await run_command(services.sandbox, ctx.container(), check.run, timeout, live)}
            results.append(result)
            services.lifecycle.events.publish(store.record_check(attempt.id, attempt.run, index, result))
            if services.metrics is not None:
                services.metrics.checks.labels(result["status"]).inc()
        if not await asyncio.to_thread(services.sandbox.is_running, ctx.container()):
            raise removed(ctx.container())  # gone since the agent finished: never a silent Review (nor a fix round)
        done = "call `finish` again" if attempt.agent == BUILTIN else "end your turn with a short summary"
        fix = fix_round_message(results, store.conversation(attempt.id), ctx.repo_settings.fix_rounds,
                                attempt.stop_reason, done)
        if fix is None:
            return Outcome()
        # a fix round is a new run: the run that ended keeps its summary (as after a follow-up)
        next_run = {"summary": None, "run": attempt.run + 1, "summaries": [*attempt.summaries, attempt.summary or ""]}
        return Outcome(f"checks failed: fix round {fix[FIX_ROUND]}", next_run, goto=Step.AGENT, to_agent=fix)
