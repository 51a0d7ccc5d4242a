"""One attempt's pipeline: worktree → container → agent → review.

The current step is stored, so a restarted daemon continues at the right one;
every step is idempotent (an existing worktree or container is adopted).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

from kilod.agent.loop import AgentRun, Budget
from kilod.agent.models import Models
from kilod.agent.tools import ToolRunner
from kilod.config import Settings
from kilod.domain import LIVE_STATES, Attempt, Card, EventKind, State, Step, container_name
from kilod.errors import Conflict, Invalid, KilodError
from kilod.git.repository import Repositories, Repository
from kilod.lifecycle import Lifecycle
from kilod.metrics import Metrics
from kilod.repo_settings import RepoSettings
from kilod.sandbox import ContainerSpec, Sandbox

log = logging.getLogger(__name__)
OUTPUT_TAIL = 4000  # characters of setup/check output kept


class Pipeline:
    def __init__(self, settings: Settings, lifecycle: Lifecycle, sandbox: Sandbox, models: Models,
                 repositories: Repositories, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.sandbox = sandbox
        self.models = models
        self.repositories = repositories

    async def run(self, attempt_id: str) -> None:
        try:
            await self._run(attempt_id)
        except asyncio.CancelledError:
            raise  # daemon stopping: the stored step is where the next start picks up
        except KilodError as exc:
            self._count_error(exc)
            self._fail(attempt_id, str(exc))
        except Exception as exc:  # a bug must fail the attempt, not kill the scheduler
            log.exception("attempt %s crashed", attempt_id, extra={"attempt_id": attempt_id})
            self._count_error(exc)
            self._fail(attempt_id, f"internal error: {type(exc).__name__}: {exc}")

    def _count_error(self, exc: Exception) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(exc.reason if isinstance(exc, KilodError) else KilodError.reason).inc()

    def _fail(self, attempt_id: str, message: str) -> None:
        attempt = self.store.get_attempt(attempt_id)
        if attempt.state in LIVE_STATES:
            self.lifecycle.transition(attempt_id, State.FAILED, error=message)

    def _advance(self, attempt: Attempt, step: Step, message: str, **fields: Any) -> Attempt:
        event = self.store.update_attempt(attempt.id, (EventKind.LOG, {"message": message, "step": str(step)}),
                                          step=step, **fields)
        if event is not None:
            self.lifecycle.events.publish(event)
        return self.store.get_attempt(attempt.id)

    async def _run(self, attempt_id: str) -> None:
        attempt = self.store.get_attempt(attempt_id)
        card = self.store.get_card(attempt.card_id)
        settings = RepoSettings.model_validate(card.settings)
        if attempt.state == State.QUEUED:
            attempt = self.lifecycle.transition(attempt.id, State.STARTING, step=Step.WORKTREE)
        repo = await self.repositories.open(card.repo)
        worktree = Path(attempt.worktree)

        if attempt.step == Step.WORKTREE:
            started = time.monotonic()
            await repo.add_worktree(worktree, attempt.branch, card.base_commit, self._chown())
            copied = await repo.copy_untracked(worktree, settings.copy_files, self._chown())
            if self.metrics is not None:
                self.metrics.worktree_create.observe(time.monotonic() - started)
            note = f"; copied {', '.join(copied)}" if copied else ""
            attempt = self._advance(attempt, Step.CONTAINER,
                                    f"worktree ready at {worktree} on {attempt.branch}{note}")

        if attempt.step == Step.CONTAINER:
            started = time.monotonic()
            container_id = await self.ensure_container(attempt, card, repo)
            if self.metrics is not None:
                self.metrics.container_start.observe(time.monotonic() - started)
            attempt = self.lifecycle.transition(attempt.id, State.RUNNING, step=Step.SETUP,
                                                container_id=container_id)

        # every later step runs in the container: after a restart it may have stopped or gone
        container_id = await self.ensure_container(attempt, card, repo)
        if attempt.state == State.STARTING:
            attempt = self.lifecycle.transition(attempt.id, State.RUNNING, container_id=container_id)
        elif container_id != attempt.container_id:
            attempt = self._advance(attempt, attempt.step, "sandbox container recreated", container_id=container_id)

        if attempt.step == Step.SETUP:
            for command in settings.setup:
                # said before it runs: a long setup shows what it is waiting for
                self.lifecycle.record(attempt.id, EventKind.LOG, {"step": "setup", "command": command,
                                                                  "status": "running", "message": f"setup: {command}"})
                result = await self._exec(container_id, command, self.settings.setup_timeout)
                self.lifecycle.record(attempt.id, EventKind.LOG, {
                    "step": "setup", "command": command, **result,
                    "message": f"setup {result['status']} (exit {result['exit_code']}): {command}"})
                if result["status"] != "passed":
                    raise Invalid(f"setup command failed ({result['status']}, exit {result['exit_code']}): "
                                     f"{command}\n{result['output_tail'][-1000:]}")
            attempt = self._advance(attempt, Step.AGENT, "setup done" if settings.setup else "no setup commands")

        if attempt.step == Step.AGENT:
            uid, gid = self.settings.sandbox_owner
            tools = ToolRunner(self.sandbox, container_id, uid, gid, self.settings.tool_timeout,
                               self.settings.tool_output_limit, self.metrics)
            agent = AgentRun(attempt.id, attempt.model, card.prompt, self.lifecycle, self.models, tools,
                             self.settings.step_limit, Budget(card.budget_tokens, card.budget_cost_usd))
            outcome = await agent.run()
            if outcome.stopped_early:
                self.lifecycle.record(attempt.id, EventKind.LOG, {"message": f"stopped: {outcome.stopped_early}"})
            summary = outcome.summary or (f"stopped: {outcome.stopped_early}" if outcome.stopped_early else "")
            attempt = self._advance(attempt, Step.CHECKS, "agent finished", summary=summary,
                                    stop_reason=outcome.stopped_early)

        if attempt.step == Step.CHECKS:
            for index, check in enumerate(settings.checks):
                timeout = check.timeout or self.settings.check_timeout
                self.lifecycle.record(attempt.id, EventKind.LOG, {
                    "step": "checks", "name": check.name, "command": check.run, "status": "running",
                    "message": f"check {check.name}: {check.run}"})
                result = await self._exec(container_id, check.run, timeout)
                self.lifecycle.events.publish(self.store.record_check(
                    attempt.id, attempt.run, index, {"name": check.name, "command": check.run, **result}))
                if self.metrics is not None:
                    self.metrics.checks.labels(result["status"]).inc()
            # what the agent left, so a follow-up can tell it what a person changed since
            left = await repo.snapshot(worktree, card.base_commit)
            self.lifecycle.transition(attempt.id, State.REVIEW, step=Step.REVIEW, review_tree=left.tree)

    async def _exec(self, container_id: str, command: str, timeout: float) -> dict[str, Any]:
        """Run a setup or check command; passed, failed (non-zero exit) or error (could not run, timed out)."""
        started = time.monotonic()
        result = await asyncio.to_thread(self.sandbox.exec, container_id, command, timeout)
        if result.timed_out:
            status = "error"
        elif result.exit_code in (126, 127):
            status = "error"  # not found / not executable: the check could not run at all
        else:
            status = "passed" if result.exit_code == 0 else "failed"
        return {
            "status": status,
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "duration": round(time.monotonic() - started, 3),
            "output_tail": result.output[-OUTPUT_TAIL:],
        }

    def _chown(self) -> tuple[int, int] | None:
        """Files in a worktree must belong to the sandbox user; only a root daemon has to say so."""
        uid, gid = self.settings.sandbox_owner
        return (uid, gid) if os.getuid() == 0 and uid != 0 else None

    async def ensure_container(self, attempt: Attempt, card: Card, repo: Repository) -> str:
        uid, gid = self.settings.sandbox_owner
        worktree = Path(attempt.worktree)
        spec = ContainerSpec(
            name=container_name(attempt.id),
            image=self.settings.sandbox_image,
            attempt_id=attempt.id,
            card_id=card.id,
            instance=self.settings.instance,
            uid=uid,
            gid=gid,
            worktree=str(worktree),
            git_pointer=str(worktree / ".git"),
            repo_git_dir=str(repo.common_dir),
            network=card.network,
            memory_limit=self.settings.memory_limit,
            cpu_limit=self.settings.cpu_limit,
            pids_limit=self.settings.pids_limit,
        )
        # the pointer file must say what git wrote, whatever the worktree holds now
        if not repo.pointer_is_intact(worktree):
            raise Conflict(f"the worktree's .git pointer at {worktree / '.git'} was changed; refusing to mount it")
        return await asyncio.to_thread(self.sandbox.ensure, spec)
