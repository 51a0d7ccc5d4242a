"""The gateway's HTTP side: routes, authentication, pinning, and one unix socket per attempt."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from kilod.agent.models import Models
from kilod.domain import Attempt
from kilod.errors import Invalid, KilodError
from kilod.events import EventLog
from kilod.gateway import forward
from kilod.gateway.errors import BadRequest, GatewayError, from_litellm, redact
from kilod.gateway.meter import BudgetHook, Meter
from kilod.gateway.tokens import TokenBook, presented
from kilod.gateway.wire import StreamUsage, Wire, error_body, error_event, usage_of
from kilod.metrics import Metrics
from kilod.store import Store

log = logging.getLogger(__name__)

SOCKET_NAME = "model.sock"
UNIX_PATH_MAX = 107
SHUTDOWN_GRACE = 2.0   # seconds
MAX_REQUEST_BYTES = 64 * 1024 * 1024   # a long agent conversation with images is tens of MB
_ATTEMPT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
ATTEMPT_KEY = web.AppKey("attempt_id", str)   # the attempt whose socket the app serves ("" = any)
WIRE_KEY = "kilod_wire"


class Gateway:
    """See the package docstring for the API other parts of kilod use."""

    def __init__(self, store: Store, events: EventLog, models: Models, data_dir: Path, timeout: float,
                 model_map: Mapping[str, str] | None = None, metrics: Metrics | None = None,
                 on_budget_spent: BudgetHook | None = None) -> None:
        self.store = store
        self.models = models
        self.dir = data_dir / "gateway"
        self.timeout = timeout
        self.model_map = dict(model_map or {})
        self.tokens = TokenBook(store)
        self.meter = Meter(store, events, metrics, on_budget_spent, models.prices)
        self._sites: dict[str, tuple[web.AppRunner, Path]] = {}
        self._native_streaming: bool | None = None   # set on the first call, once litellm is loaded

    @property
    def on_budget_spent(self) -> BudgetHook | None:
        return self.meter.on_budget_spent

    @on_budget_spent.setter
    def on_budget_spent(self, hook: BudgetHook | None) -> None:
        self.meter.on_budget_spent = hook

    # -- tokens ----------------------------------------------------------------

    def issue(self, attempt_id: str, agent: str = "other") -> str:
        """A new token for the attempt (replacing its earlier one); only its hash is stored."""
        return self.tokens.issue(attempt_id, agent)

    def revoke(self, attempt_id: str) -> None:
        self.tokens.revoke(attempt_id)

    # -- listening ---------------------------------------------------------------

    def socket_path(self, attempt_id: str) -> Path:
        if not _ATTEMPT_ID.match(attempt_id):
            raise Invalid(f"bad attempt id '{attempt_id}'")
        return self.dir / attempt_id / SOCKET_NAME

    async def listen(self, attempt_id: str, owner: tuple[int, int] | None = None, mode: int = 0o600) -> Path:
        """Serve the gateway for this attempt only on `<data_dir>/gateway/<attempt_id>/model.sock`.

        Bind-mount the *directory* into the container: a socket re-created after a daemon
        restart is then seen there too. `owner` (uid, gid) is given to the directory and the
        socket when the daemon runs as root and the sandbox user must connect.
        """
        if attempt_id in self._sites:
            return self._sites[attempt_id][1]
        path = self.socket_path(attempt_id)   # Invalid for an id that is no attempt's
        self.store.get_attempt(attempt_id)     # NotFound for an unknown attempt
        if len(str(path)) > UNIX_PATH_MAX:
            raise Invalid(f"gateway socket path is too long for a unix socket: {path}")
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()   # left by a daemon that was killed: nobody listens on it
        # at daemon stop, calls in flight get a moment; the agent retries a dropped connection
        runner = web.AppRunner(self.app(attempt_id), access_log=None, handler_cancellation=True,
                               shutdown_timeout=SHUTDOWN_GRACE)
        await runner.setup()
        old_umask = os.umask(0o177)   # born 0600: no window where another user may connect
        try:
            await web.UnixSite(runner, str(path)).start()
        finally:
            os.umask(old_umask)
        if owner is not None:
            os.chown(path.parent, *owner)
            os.chown(path, *owner)
        os.chmod(path, mode)
        self._sites[attempt_id] = (runner, path)
        return path

    async def close(self, attempt_id: str) -> None:
        """Stop serving the attempt's socket and remove it (its token stays until revoked)."""
        entry = self._sites.pop(attempt_id, None)
        if entry is None:
            return
        runner, path = entry
        await runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(OSError):
            path.parent.rmdir()

    async def settled(self, attempt_id: str | None = None) -> None:
        """Wait until every call answered so far (of one attempt, or of all) is counted, durably."""
        await self.meter.settled(attempt_id)

    async def aclose(self) -> None:
        """At daemon stop: close every socket (running agents reconnect after the restart)."""
        await self.meter.settled()   # every answered call counted first
        for attempt_id in list(self._sites):
            await self.close(attempt_id)

    # -- HTTP --------------------------------------------------------------------

    def app(self, attempt_id: str | None = None) -> web.Application:
        """The gateway's routes; bound to one attempt, or (None) to whichever attempt the token names."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app[ATTEMPT_KEY] = attempt_id or ""
        app.router.add_post("/v1/messages", self._handler(Wire.ANTHROPIC))
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_post("/v1/chat/completions", self._handler(Wire.CHAT))
        app.router.add_post("/v1/responses", self._handler(Wire.RESPONSES))
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        return app

    def _handler(self, wire: Wire) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.handle(request, wire)
        return handle

    def _authorise(self, request: web.Request) -> tuple[Attempt, str]:
        return self.tokens.check(presented(request.headers), request.app[ATTEMPT_KEY] or None)

    def pinned_model(self, attempt: Attempt, requested: Any) -> str:
        """The model the call goes to: a mapped name's target, else always the attempt's own model."""
        if isinstance(requested, str) and requested in self.model_map:
            return self.model_map[requested]
        return attempt.model

    async def handle(self, request: web.Request, wire: Wire) -> web.StreamResponse:
        try:
            attempt, agent = self._authorise(request)   # before reading the body: nothing reaches a provider
            body = await _json_body(request)
            await self.meter.settled(attempt.id)   # its answered calls are counted before its budget is judged
            self.meter.check_budget(attempt.id)
            model = self.pinned_model(attempt, body.get("model"))
            litellm = await self.models.litellm()
            if self._native_streaming is None:
                self._native_streaming = await asyncio.to_thread(forward.prepare, litellm)
        except GatewayError as exc:
            return _error(wire, exc)
        except KilodError as exc:
            return _error(wire, GatewayError(503, redact(exc.message), "unavailable"))
        stream = bool(body.get("stream"))
        usage_wanted = wire != Wire.CHAT or bool((body.get("stream_options") or {}).get("include_usage"))
        kwargs = forward.request_kwargs(wire, body, model, self.timeout)
        usage = StreamUsage(wire)
        started = time.monotonic()
        try:
            answer = await forward.call(litellm, wire, kwargs, usage, usage_wanted, self._native_streaming)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = from_litellm(exc, model)
            log.info("attempt %s: gateway call to %s failed: %s", attempt.id, model, failure.message,
                     extra={"attempt_id": attempt.id})
            await self.meter.record(litellm, attempt.id, agent, model, wire, usage.usage(), started, stream,
                                    failure)
            return _error(wire, failure)
        if answer.body is not None:
            # answered first, then counted (durable before the handler ends): the commit's fsync is
            # not part of the agent's wait; the attempt's next call waits for it (`settled`)
            whole = web.json_response(answer.body)
            await whole.prepare(request)
            await whole.write_eof()
            await self.meter.record(litellm, attempt.id, agent, model, wire, usage_of(wire, answer.body), started,
                                    False)
            return whole
        assert answer.stream is not None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        error: GatewayError | None = None
        recorded: asyncio.Task[None] | None = None
        try:
            await response.prepare(request)
            async for chunk in answer.stream:
                await response.write(chunk)
        except asyncio.CancelledError:
            error = GatewayError(499, "the agent closed the connection mid-stream")
            raise
        except ConnectionResetError:
            error = GatewayError(499, "the agent closed the connection mid-stream")
            return response
        except Exception as exc:
            error = from_litellm(exc, model)
            with contextlib.suppress(ConnectionResetError):
                await response.write(error_event(wire, error.status, error.message, error.code))
        finally:
            # a started stream is a model call even when the agent hung up or the stream broke
            recorded = self.meter.record_soon(litellm, attempt.id, agent, model, wire, usage.usage(), started, True,
                                              error, called=True)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        await asyncio.shield(recorded)
        return response

    async def count_tokens(self, request: web.Request) -> web.Response:
        """Anthropic's token count for a would-be request, by litellm's tokenizer for the pinned model."""
        try:
            attempt, _agent = self._authorise(request)
            body = await _json_body(request)
            litellm = await self.models.litellm()
        except GatewayError as exc:
            return _error(Wire.ANTHROPIC, exc)
        except KilodError as exc:
            return _error(Wire.ANTHROPIC, GatewayError(503, redact(exc.message), "unavailable"))
        model = self.pinned_model(attempt, body.get("model"))
        parts = [body.get("system"), body.get("messages"), body.get("tools")]
        text = json.dumps([p for p in parts if p])
        try:
            count = int(await asyncio.to_thread(litellm.token_counter, model=model, text=text))
        except Exception:
            count = max(1, len(text) // 4)   # no tokenizer for this model: the usual estimate
        return web.json_response({"input_tokens": count})

    async def list_models(self, request: web.Request) -> web.Response:
        """The one model this attempt talks to, in a shape both OpenAI and Anthropic clients read."""
        try:
            attempt, _agent = self._authorise(request)
        except GatewayError as exc:
            return _error(Wire.CHAT, exc)
        entry = {"id": attempt.model, "object": "model", "type": "model", "created": 0, "owned_by": "kilod",
                 "display_name": attempt.model, "created_at": "1970-01-01T00:00:00Z"}
        return web.json_response({"object": "list", "data": [entry], "has_more": False,
                                  "first_id": attempt.model, "last_id": attempt.model})

    async def not_found(self, request: web.Request) -> web.Response:
        wire = Wire.ANTHROPIC if request.path.startswith("/v1/messages") else Wire.CHAT
        return _error(wire, GatewayError(404, f"kilod gateway: no route {request.method} {request.path}",
                                         "not_found"))


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequest(f"kilod gateway: the request body is not JSON: {exc}") from None
    except web.HTTPRequestEntityTooLarge:
        raise GatewayError(413, f"kilod gateway: request larger than {MAX_REQUEST_BYTES} bytes",
                           "request_too_large") from None
    if not isinstance(body, dict):
        raise BadRequest("kilod gateway: the request body must be a JSON object")
    return body


def _error(wire: Wire, error: GatewayError) -> web.Response:
    return web.json_response(error_body(wire, error.status, error.message, error.code), status=error.status)
