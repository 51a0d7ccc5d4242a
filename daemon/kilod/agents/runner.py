"""`run_agent(ctx) -> AgentResult`: one run of an agent CLI in the attempt's container.

What the pipeline's AGENT step calls for any `attempt.agent` other than "builtin":

    1. the gateway serves the attempt's socket; the forwarder sidecar bridges it to
       127.0.0.1:PORT in the attempt's network namespace
    2. unless this run was already launched (the daemon restarted): a fresh token, the
       adapter's command line and files, and a detached launch (kilod.agents.process)
    3. follow the output file: each line → the adapter → events, each carrying the byte
       offset it came from, so a re-attached daemon records only what it had not
       (the offset is in the event itself: recorded once, in the same transaction)
    4. the agent's end: its summary, or why it stopped early (budget), or a failure

Cancel (the attempt is `cancelled` when the task is cancelled) kills the agent's whole
process group; a daemon shutdown (also a cancel, the attempt still live) leaves it
running. A budget the gateway finds spent stops it too, through `Stops`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kilod.agent.loop import AgentResult
from kilod.agents import statefiles
from kilod.agents.aider import Aider
from kilod.agents.base import Adapter, AgentEvent, Outcome, Request, clip
from kilod.agents.catalog import CATALOG, STATE_MOUNT, package
from kilod.agents.claude_code import ClaudeCode
from kilod.agents.codex import Codex
from kilod.agents.forwarder import BASE_URL, ForwarderSpec, ensure_forwarder, remove_forwarder
from kilod.agents.helper import for_instance
from kilod.agents.install import InstallError, current
from kilod.agents.mini_swe_agent import MiniSweAgent
from kilod.agents.process import AgentProcess, RunFiles, run_files
from kilod.agents.venvs import for_image
from kilod.config import Settings
from kilod.domain import Attempt, Card, EventKind, State
from kilod.errors import KilodError, Unavailable
from kilod.lifecycle import Lifecycle
from kilod.sandbox.base import MountSpec
from kilod.sandbox.docker import DockerSandbox

log = logging.getLogger(__name__)

POLL = 0.25            # seconds between reads of the output file
ALIVE_EVERY = 5.0      # seconds between checks that the process still runs
PID_GRACE = 30.0       # seconds a launch may take to write its pid

ADAPTERS: dict[str, Adapter] = {a.name: a for a in (ClaudeCode(), Codex(), Aider(), MiniSweAgent())}


class GatewayPort(Protocol):
    """What the runner needs of kilod.gateway.Gateway."""

    def issue(self, attempt_id: str, agent: str = "other") -> str: ...

    async def listen(self, attempt_id: str, owner: tuple[int, int] | None = None, mode: int = 0o600) -> Path: ...

    async def close(self, attempt_id: str) -> None: ...

    async def settled(self, attempt_id: str | None = None) -> None: ...

    def revoke(self, attempt_id: str) -> None: ...


class Stops:
    """Requests to stop a running agent early (a spent budget), keyed by attempt."""

    def __init__(self) -> None:
        self._reasons: dict[str, str] = {}

    def request(self, attempt_id: str, reason: str) -> None:
        self._reasons[attempt_id] = reason

    def take(self, attempt_id: str) -> str | None:
        return self._reasons.pop(attempt_id, None)


@dataclass
class AgentContext:
    attempt: Attempt
    card: Card
    container_id: str
    prompt: str                  # the card's prompt, or (a follow-up) the person's message
    settings: Settings
    sandbox: DockerSandbox       # docker-py itself: detached execs, the forwarder sidecar
    lifecycle: Lifecycle
    gateway: GatewayPort
    stops: Stops = field(default_factory=Stops)


def state_dir(settings: Settings, attempt_id: str) -> Path:
    """The attempt's agent state (HOME, sessions, config, output): outside the worktree, kept across containers."""
    return settings.data_dir / "agent-state" / attempt_id


def sandbox_ids(settings: Settings) -> tuple[int, int]:
    return settings.sandbox_owner


def agent_mounts(settings: Settings, attempt: Attempt, image: str, repo: str) -> list[MountSpec]:
    """For the attempt's container in `image`: the agent's install for that image (read-only) and its state dir.

    Blocking (it may ask the image for its python3 once): call from a thread.
    """
    if attempt.agent not in CATALOG:
        return []
    spec = package(attempt.agent)
    try:
        installed = for_image(settings.data_dir, attempt.agent, image, repo, for_instance(settings.instance))
    except InstallError as exc:
        raise Unavailable(str(exc)) from None
    if installed is None:  # the pipeline's install step builds it; a container re-made later finds it
        raise Unavailable(f"agent '{attempt.agent}' has no venv for the python3 of image {image} yet; "
                          "retry the attempt (its install step builds one)")
    folder = state_dir(settings, attempt.id)
    owner = sandbox_ids(settings) if os.getuid() == 0 else None
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)   # the daemon's own: the agent sees only its inside
    if owner is not None:
        os.chown(folder, *owner)
    for inside in ("home", "runs"):
        statefiles.make_dirs(folder, inside, owner)
    return [MountSpec(installed.path, spec.mounted_at(), read_only=True),
            MountSpec(str(folder), STATE_MOUNT, read_only=False)]


def _write_owned(settings: Settings, root: Path, relative: str, text: str) -> None:
    statefiles.write_text(root, relative, text, sandbox_ids(settings) if os.getuid() == 0 else None)


async def run_agent(ctx: AgentContext) -> AgentResult:
    attempt, settings = ctx.attempt, ctx.settings
    adapter = ADAPTERS[attempt.agent]
    folder = state_dir(settings, attempt.id)
    uid, gid = sandbox_ids(settings)
    files = run_files(folder, str(attempt.run))
    process = AgentProcess(ctx.sandbox, ctx.container_id, f"{uid}:{gid}")
    socket = await ctx.gateway.listen(attempt.id, owner=(uid, gid))
    await asyncio.to_thread(ensure_forwarder, ctx.sandbox, ForwarderSpec(
        attempt.id, attempt.card_id, settings.instance, ctx.container_id, socket,
        settings.forwarder_image, uid, gid))
    if files.started():
        ctx.lifecycle.record(attempt.id, EventKind.LOG, {"message": f"re-attaching to {adapter.name} "
                                                                   f"(process group {files.pid()})"})
    else:
        await _launch(ctx, adapter, files, process)
    try:
        outcome = await _follow(ctx, adapter, files, process)
    except asyncio.CancelledError:
        if ctx.lifecycle.store.get_attempt(attempt.id).state == State.CANCELLED:
            await _stop(ctx, files, process)  # a person cancelled; a daemon shutdown leaves the agent running
            await _end(ctx)
        raise
    except BaseException:
        await _end(ctx)
        raise
    await _end(ctx)
    return _result(ctx, adapter, files, outcome)


async def _end(ctx: AgentContext) -> None:
    """The run is over: its calls are counted, its socket and its forwarder go (the next run makes both anew)."""
    await ctx.gateway.settled(ctx.attempt.id)
    await ctx.gateway.close(ctx.attempt.id)
    await asyncio.to_thread(remove_forwarder, ctx.sandbox, ctx.attempt.id)


async def _launch(ctx: AgentContext, adapter: Adapter, files: RunFiles, process: AgentProcess) -> None:
    attempt, settings = ctx.attempt, ctx.settings
    folder = state_dir(settings, attempt.id)
    session = (statefiles.read_text(folder, "session") or "").strip() or adapter.session_for(attempt.id)
    token = ctx.gateway.issue(attempt.id, adapter.name)
    launch = adapter.launch(Request(prompt=ctx.prompt, run=attempt.run, base_url=BASE_URL, token=token,
                                    attempt_id=attempt.id, model=attempt.model, session=session,
                                    max_turns=settings.step_limit))
    for relative, text in launch.files.items():
        _write_owned(settings, folder, relative, text)
    if session:
        _write_owned(settings, folder, "session", session)
    statefiles.make_dirs(folder, files.relative, sandbox_ids(settings) if os.getuid() == 0 else None)
    await asyncio.to_thread(process.start, files, launch.argv, launch.env)
    resuming = f", resuming session {session}" if attempt.run > 1 and session else ""
    ctx.lifecycle.record(attempt.id, EventKind.LOG, {
        "message": f"started {adapter.name} (run {attempt.run}{resuming})",
        "agent": adapter.name, "version": _version(settings, adapter.name)})


def _version(settings: Settings, name: str) -> str | None:
    installed = current(settings.data_dir, name)
    return installed.version if installed else None


def _recorded_offset(ctx: AgentContext, key: str) -> int:
    """How far into this run's output the events already recorded go (0 on a first attach)."""
    offsets = [e.payload.get("at", 0) for e in ctx.lifecycle.store.events_of(ctx.attempt.id)
               if e.payload.get("stream") == key]
    return max((int(o) for o in offsets if isinstance(o, int)), default=0)


async def _follow(ctx: AgentContext, adapter: Adapter, files: RunFiles, process: AgentProcess) -> Outcome:
    outcome = Outcome()
    recorded = _recorded_offset(ctx, files.key)
    tail = files.tail()  # parse from the start, so the adapter's state (session, calls) is whole
    launched = time.monotonic()
    last_alive = time.monotonic()
    session_file = state_dir(ctx.settings, ctx.attempt.id) / "session"
    written_session: str | None = None
    while True:
        ended = files.exit_status() is not None
        lines = tail.rest() if ended else tail.lines()
        for offset, line in lines:
            events = adapter.parse(line, outcome)
            if offset > recorded:
                for event in events:
                    _record(ctx, event, files.key, offset)
        if outcome.session and outcome.session != written_session:
            _write_owned(ctx.settings, session_file.parent, session_file.name, outcome.session)
            written_session = outcome.session
        if ended:
            end = tail.offset + 1  # past every line: recorded once, after the last line's own events
            if end > recorded:
                for event in adapter.finish(outcome):
                    _record(ctx, event, files.key, end)
            return outcome
        reason = ctx.stops.take(ctx.attempt.id)
        if reason is not None:
            ctx.lifecycle.record(ctx.attempt.id, EventKind.LOG, {"message": f"stopping {adapter.name}: {reason}"})
            await _stop(ctx, files, process)
            outcome.error = None
            return outcome
        if time.monotonic() - last_alive > ALIVE_EVERY:
            last_alive = time.monotonic()
            pid = files.pid()
            gone = (pid is None and time.monotonic() - launched > PID_GRACE) or (
                pid is not None and not await asyncio.to_thread(process.alive, pid))
            if gone and files.exit_status() is None:  # (it could have ended just now)
                raise KilodError(f"{adapter.name} is no longer running (its container was restarted?) "
                                 "and left no exit status; retry the attempt or send a follow-up")
        await asyncio.sleep(POLL)


def _record(ctx: AgentContext, event: AgentEvent, key: str, offset: int) -> None:
    payload = {**event.payload, "agent": ctx.attempt.agent, "stream": key, "at": offset}
    store = ctx.lifecycle.store
    if event.kind == EventKind.TOOL_CALL:
        count = store.get_attempt(ctx.attempt.id).tool_calls + 1
        stored = store.update_attempt(ctx.attempt.id, (event.kind, payload), tool_calls=count)
        if stored is not None:
            ctx.lifecycle.events.publish(stored)
    else:
        ctx.lifecycle.record(ctx.attempt.id, event.kind, payload)


async def _stop(ctx: AgentContext, files: RunFiles, process: AgentProcess) -> None:
    pid = files.pid()
    if pid is not None:
        await asyncio.to_thread(process.kill, pid)
    ctx.gateway.revoke(ctx.attempt.id)


def _result(ctx: AgentContext, adapter: Adapter, files: RunFiles, outcome: Outcome) -> AgentResult:
    attempt = ctx.lifecycle.store.get_attempt(ctx.attempt.id)
    status = files.exit_status()
    if attempt.stop_reason:  # the gateway stopped it (a spent budget): to review, with the reason
        return AgentResult(outcome.summary, attempt.stop_reason)
    if status not in (0, None) or outcome.error:
        err = files.stderr_tail(2000)
        if err.strip():
            ctx.lifecycle.record(attempt.id, EventKind.LOG, {"message": f"{adapter.name} stderr:\n{clip(err, 2000)}"})
        if not outcome.finished or outcome.error:
            raise KilodError(outcome.error or f"{adapter.name} exited with status {status}"
                             + (f": {err.strip().splitlines()[-1][:300]}" if err.strip() else ""))
    return AgentResult(outcome.summary, None)
