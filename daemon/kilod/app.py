"""The daemon, in readable steps: build the parts, start listening, serve until told to stop, shut down.

`Daemon.run` is those four calls (the shape of uvicorn's `Server.serve`). Building
wires store, event log, sandbox, models, repositories, pipeline, scheduler and API
together and touches nothing outside the data dir; startup binds the socket
(born 0600) and starts the scheduler; shutdown undoes what startup did, in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from kilod import __version__
from kilod.agent.models import Models, RetryPolicy
from kilod.agents.runner import Stops
from kilod.agents.step import agents
from kilod.api import Api, Services, make_app
from kilod.board import Board
from kilod.cards import Cards
from kilod.config import Settings
from kilod.diskspace import DiskGuard
from kilod.environments.attach import Environments
from kilod.environments.gc import Collector, collect_forever
from kilod.environments.routes import EnvironmentRoutes
from kilod.errors import Conflict, Invalid
from kilod.events import EventLog
from kilod.gateway import Gateway
from kilod.git.repository import Repositories
from kilod.lifecycle import Lifecycle
from kilod.metrics import Metrics
from kilod.pipeline.base import Services as PipelineServices
from kilod.pipeline.runner import Pipeline, default_steps
from kilod.review.commands import Commands
from kilod.review.context import CardLocks
from kilod.review.landing import Landing
from kilod.review.queries import Queries
from kilod.review.shelf import Shelf
from kilod.sandbox.docker import DockerSandbox
from kilod.scheduler import Scheduler
from kilod.store import Store
from kilod.web.server import WebBoard

log = logging.getLogger("kilod")

# Docker and git calls run in threads; a shell tool can hold one for minutes.
THREADS = 64
UNIX_PATH_MAX = 107


def socket_in_use(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


@dataclass
class Parts:
    """Everything the daemon built, for startup and shutdown to use."""

    store: Store
    events: EventLog
    models: Models
    scheduler: Scheduler
    api: Api
    web_board: WebBoard
    gateway: Gateway
    environment_routes: EnvironmentRoutes
    collector: Collector


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._listening = False
        self._gc: asyncio.Task[None] | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self.check_paths()
        parts = self.build()
        try:
            await self.startup(parts)
            await self.serve()
        finally:
            await self.shutdown(parts)

    def check_paths(self) -> None:
        """The data dir exists and the socket path is free; a live daemon on it is a Conflict."""
        settings, path = self.settings, self.settings.socket_path
        if len(str(path)) > UNIX_PATH_MAX:
            raise Invalid(f"socket path is too long for a unix socket ({len(str(path))} > {UNIX_PATH_MAX}): {path}")
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings.worktrees_dir.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if socket_in_use(path):
                raise Conflict(f"a daemon is already listening on {path}")
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)

    def build(self) -> Parts:
        settings = self.settings
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="kilod-io"))
        store = Store(settings.db_path)
        events = EventLog(store)
        lifecycle = Lifecycle(store, events)
        metrics = Metrics(store)
        metrics.slots.set(settings.max_parallel)
        lifecycle.observers.append(metrics.transition)
        sandbox = DockerSandbox()
        models = Models(settings.scripts_dir, settings.model_timeout, metrics,
                        RetryPolicy(settings.model_retry_patience, settings.model_retries))
        repositories = Repositories(settings.max_file_bytes)
        environments = Environments(settings, lambda: sandbox.client)
        # agent CLIs reach models only through the gateway, one unix socket per attempt (#15, kilod.agents);
        # a spent budget stops the attempt's agent
        gateway = Gateway(store, events, models, settings.data_dir, settings.model_timeout,
                          settings.gateway_models, metrics)
        stops = Stops()
        gateway.on_budget_spent = stops.request
        pipeline = Pipeline(PipelineServices(settings, lifecycle, sandbox, models, metrics, environments),
                            repositories,
                            default_steps(agents(gateway, stops)))
        scheduler = Scheduler(settings, lifecycle, pipeline.run, sandbox, metrics)
        locks = CardLocks()
        landing = Landing(settings, lifecycle, repositories, sandbox, scheduler.cancel, locks)
        board = Board(store)
        board.load()  # the board's projection, from the store; commits keep it current
        services = Services(
            cards=Cards(settings, store, events, models, repositories),
            board=board,
            queries=Queries(lifecycle, repositories),
            landing=landing,
            commands=Commands(settings, lifecycle, repositories, pipeline.ensure_container, scheduler.cancel,
                              scheduler.kick, locks),
            shelf=Shelf(store, landing),
            store=store, events=events, metrics=metrics,
        )

        def status() -> dict[str, Any]:
            return {
                "version": __version__,
                "pid": os.getpid(),
                "instance": settings.instance,
                "data_dir": str(settings.data_dir),
                "socket": str(settings.socket_path),
                "sandbox_image": settings.sandbox_image,
                "max_parallel": settings.max_parallel,
                "running": len(scheduler.active),
                "peak_running": scheduler.peak_active,
                "queued": board.queued(),
                "litellm_ready": models.ready,
                "last_event_id": store.last_event_id(),
                "disk": {"data_dir": str(settings.data_dir), "free_bytes": pipeline.disk.free(),
                         "min_free_bytes": settings.min_free_bytes, "below_floor": pipeline.disk.below_floor()},
            }

        api = Api(services, on_change=scheduler.kick, on_shutdown=self.request_stop, status=status)
        web_board = WebBoard(settings, api)  # the browser's TCP listener, when settings.http is set
        collector = Collector(store, sandbox.remove, environments.container_exists, repositories)
        environment_routes = EnvironmentRoutes(environments, collector, settings.worktrees_dir, settings.gc_idle_after)
        return Parts(store, events, models, scheduler, api, web_board, gateway, environment_routes, collector)

    async def startup(self, parts: Parts) -> None:
        """Listen on the socket (and the web board's port), then start work."""
        settings, path = self.settings, self.settings.socket_path
        parts.models.start_loading()
        unix_app = make_app(parts.api)
        unix_app.add_routes(parts.web_board.unix_routes())
        unix_app.add_routes(parts.environment_routes.routes())
        self._runner = web.AppRunner(unix_app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        # room for writing a pause when the disk fills (see kilod.diskspace), there before any request can
        # start work
        await asyncio.to_thread(DiskGuard(settings.data_dir, settings.min_free_bytes).make_reserve)
        await parts.web_board.start()
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others may connect
        try:
            await web.UnixSite(self._runner, str(path)).start()
            self._listening = True
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        log.info("kilod %s listening on %s (data dir %s, instance %s)", __version__, path,
                 settings.data_dir, settings.instance)
        await parts.api.landing.recover()  # a landing a kill -9 cut short is finished before work resumes
        parts.scheduler.start()
        if settings.gc_auto:
            self._gc = asyncio.create_task(collect_forever(parts.collector, settings.gc_idle_after), name="gc")

    async def serve(self) -> None:
        """Until SIGTERM, SIGINT or POST /v1/shutdown."""
        await self._stop.wait()

    async def shutdown(self, parts: Parts) -> None:
        """Stop work (it resumes at the next start), end followers, stop listening, close the store."""
        log.info("stopping; running attempts resume at the next start")
        await parts.scheduler.stop()
        if self._gc is not None:
            self._gc.cancel()
            await asyncio.gather(self._gc, return_exceptions=True)
        await parts.gateway.aclose()
        parts.events.close()
        await parts.web_board.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        parts.store.close()
        if self._listening:
            with contextlib.suppress(FileNotFoundError):
                self.settings.socket_path.unlink()


def serve(settings: Settings) -> None:
    asyncio.run(Daemon(settings).run())
