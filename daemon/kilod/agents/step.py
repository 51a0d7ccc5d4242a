"""The agent CLIs as `Agent`s of the pipeline's AGENT step (kilod.pipeline.agent).

The step looks an attempt's `agent` up in the mapping `agents()` builds: `builtin` is
kilod's own loop, every agent in the catalog is a `CliAgent` around `run_agent`.
"""

from __future__ import annotations

from kilod.agent.loop import AgentResult
from kilod.agents.catalog import CATALOG
from kilod.agents.runner import AgentContext, GatewayPort, Stops, run_agent
from kilod.errors import Unavailable
from kilod.pipeline.agent import BUILTIN, Agent, BuiltinAgent
from kilod.pipeline.base import StepContext
from kilod.sandbox.docker import DockerSandbox


class CliAgent:
    """One run of an agent CLI in the attempt's container, through the gateway."""

    def __init__(self, gateway: GatewayPort, stops: Stops) -> None:
        self.gateway = gateway
        self.stops = stops

    async def run(self, ctx: StepContext) -> AgentResult:
        services, attempt = ctx.services, ctx.attempt
        if not isinstance(services.sandbox, DockerSandbox):
            raise Unavailable(f"agent '{attempt.agent}' runs only in Docker sandboxes")
        # a follow-up's prompt is the person's message (comments, what they changed), stored last
        asked = [m for m in services.lifecycle.store.conversation(attempt.id) if m.get("role") == "user"]
        prompt = str(asked[-1]["content"]) if attempt.run > 1 and asked else ctx.card.prompt
        return await run_agent(AgentContext(attempt, ctx.card, ctx.container(), prompt, services.settings,
                                            services.sandbox, services.lifecycle, self.gateway, self.stops))


def agents(gateway: GatewayPort, stops: Stops) -> dict[str, Agent]:
    """Every agent this daemon runs, by the name attempts carry."""
    cli = CliAgent(gateway, stops)
    return {BUILTIN: BuiltinAgent(), **dict.fromkeys(CATALOG, cli)}
