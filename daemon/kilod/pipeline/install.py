"""The attempt's agent CLI, installed for the attempt's image: a Python agent's venv for its python3.

A venv runs only with the interpreter that made it (kilod.agents.venvs); an attempt in a
repository's own image needs one for that image's python3, unless an image with the same
interpreter already has one. This step finds it or builds it (step `install`, "installing
agent …", pip's lines streamed as events), before the container that mounts it is made.
Binary agents (Claude Code, Codex) and the built-in agent need nothing here.
"""

from __future__ import annotations

import asyncio

from kilod.agents.catalog import CATALOG
from kilod.agents.helper import for_instance
from kilod.agents.install import InstallError
from kilod.agents.venvs import ensure
from kilod.domain import EventKind, Step
from kilod.environments.buildlog import BuildLog
from kilod.errors import Unavailable
from kilod.pipeline.base import Outcome, StepContext
from kilod.pipeline.image import sandbox_image


class InstallStep:
    step = Step.INSTALL
    needs_container = False

    async def run(self, ctx: StepContext) -> Outcome:
        agent = ctx.attempt.agent
        if agent not in CATALOG or CATALOG[agent].kind != "python":
            return Outcome()
        services = ctx.services
        image = await sandbox_image(services, ctx.attempt, ctx.card, ctx.repo)
        ca = services.environments.ca_files() if services.environments is not None else None

        def record(text: str) -> None:
            services.lifecycle.record(ctx.attempt.id, EventKind.LOG, {"step": str(Step.INSTALL), "message": text})

        log = BuildLog(asyncio.get_running_loop(), record)
        try:
            # kilod's own image builds a venv every repository may share; a repository's image, its own
            installed, built = await asyncio.to_thread(
                ensure, services.settings.data_dir, agent, image, image == services.settings.sandbox_image,
                ctx.card.repo, ca.bundle if ca is not None else None, log, for_instance(services.settings.instance))
        except InstallError as exc:
            raise Unavailable(f"cannot install agent {agent} for image {image}: {exc}") from None
        finally:
            log.flush()
        record(f"{'installed' if built else 'using'} {agent} {installed.version} for {image} "
               f"(python3 {installed.python} at {installed.interpreter or 'the path it was built with'})")
        return Outcome()
