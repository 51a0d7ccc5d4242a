"""The agent works in the attempt's container until it finishes, stops early, or fails.

Which agent runs is looked up by the attempt's `agent`: `BUILTIN` (kilod's own loop)
or an agent CLI (Claude Code, Codex, aider, mini-swe-agent: kilod.agents.step), each one
more `Agent` in the mapping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Protocol

from kilod.agent.early import EarlyCall
from kilod.agent.loop import AgentResult, AgentRun, Budget, first_request
from kilod.agent.prompt import Environment
from kilod.agent.tools import TOOL_SCHEMAS, ToolRunner
from kilod.domain import EventKind, State, Step
from kilod.errors import Unavailable
from kilod.pipeline.base import Outcome, StartsEarly, StepContext

BUILTIN = "builtin"


class Agent(Protocol):
    async def run(self, ctx: StepContext) -> AgentResult:
        """Work on the card's prompt (continuing the stored conversation) until done or stopped."""
        ...


class BuiltinAgent:
    """kilod's own tool-calling loop; every tool runs in the attempt's container."""

    def start_early(self, ctx: StepContext) -> None:
        """A fresh attempt's first model call, sent while its container starts (kilod.agent.early)."""
        if ctx.services.lifecycle.store.conversation(ctx.attempt.id):
            return   # not fresh: what it sends next depends on what the container holds
        request = first_request(ctx.attempt.model, ctx.card.prompt, self._environment(ctx))
        ctx.early = EarlyCall.start(ctx.services.models, ctx.attempt.model, request, TOOL_SCHEMAS)

    @staticmethod
    def _environment(ctx: StepContext) -> Environment:
        settings = ctx.services.settings
        return Environment(ctx.card.network, settings.tool_timeout, settings.tool_output_limit, settings.step_limit,
                           [c.run for c in ctx.repo_settings.checks], Path(ctx.attempt.worktree))

    async def run(self, ctx: StepContext) -> AgentResult:
        services, attempt, card = ctx.services, ctx.attempt, ctx.card
        settings = services.settings
        uid, gid = settings.sandbox_owner
        tools = ToolRunner(services.sandbox, ctx.container(), uid, gid, settings.tool_timeout,
                           settings.tool_output_limit, services.metrics)
        environment = self._environment(ctx)
        early, ctx.early = ctx.early, None
        loop = AgentRun(attempt.id, attempt.model, card.prompt, services.lifecycle, services.models, tools,
                        settings.step_limit, Budget(card.budget_tokens, card.budget_cost_usd),
                        context_window=settings.context_window, manage_context=settings.context_management,
                        environment=environment,
                        pause_requested=partial(asyncio.to_thread, services.lifecycle.store.pause_requested,
                                                attempt.id),
                        early=early)
        return await loop.run()


class AgentStep:
    step = Step.AGENT
    needs_container = True

    def __init__(self, agents: Mapping[str, Agent] | None = None) -> None:
        self.agents: Mapping[str, Agent] = agents if agents is not None else {BUILTIN: BuiltinAgent()}

    def start_early(self, ctx: StepContext) -> None:
        agent = self.agents.get(ctx.attempt.agent)
        if isinstance(agent, StartsEarly):   # kilod's own loop; an agent CLI makes its calls in the container
            agent.start_early(ctx)

    def agent_for(self, ctx: StepContext) -> Agent:
        agent = self.agents.get(ctx.attempt.agent)
        if agent is None:
            raise Unavailable(f"agent '{ctx.attempt.agent}' is not run by this daemon")
        return agent

    async def run(self, ctx: StepContext) -> Outcome:
        container_id = ctx.container()
        # a container removed under the agent fails the attempt ("container removed"), never a silent Review
        result = await ctx.services.containers.guard(self.agent_for(ctx).run(ctx), container_id)
        if result.paused:
            # what the agent left, so the resume can tell it what the person changed meanwhile
            left = await ctx.repo.snapshot(Path(ctx.attempt.worktree), ctx.card.base_commit)
            return Outcome(fields={"review_tree": left.tree, "pause_requested": False}, state=State.PAUSED,
                           goto=Step.AGENT)
        if result.stopped_early:
            ctx.services.lifecycle.record(ctx.attempt.id, EventKind.LOG,
                                          {"message": f"stopped: {result.stopped_early}"})
        summary = result.summary or (f"stopped: {result.stopped_early}" if result.stopped_early else "")
        # a pause asked for after the agent's last check is dropped with this move: the agent finished first
        return Outcome("agent finished", {"summary": summary, "stop_reason": result.stopped_early,
                                          "pause_requested": False})
