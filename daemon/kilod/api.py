"""HTTP API under /v1: JSON in and out, SSE for live events.

Errors leave as `{"error": {"status", "reason", "message", …details}}`: each kind in
the error tree carries its own status and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from kilod import __version__
from kilod.board import Board
from kilod.cards import Cards, NewCard
from kilod.domain import meta
from kilod.errors import Invalid, KilodError
from kilod.events import EventLog
from kilod.git.names import raw, readable
from kilod.metrics import CONTENT_TYPE, Metrics
from kilod.openapi import OPENAPI
from kilod.review.commands import Commands, FollowUpRequest, ResumeRequest
from kilod.review.landing import ApproveRequest, Landing
from kilod.review.queries import CommentRequest, Queries
from kilod.review.shelf import Shelf
from kilod.store import Store
from kilod.trust import TrustRequest
from kilod.web.highlight import highlight_diff

log = logging.getLogger(__name__)
SSE_HEARTBEAT_SECONDS = 15.0
MAX_BODY_BYTES = 4 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str, *, reason: str | None = None, **details: Any) -> web.Response:
    body = {"status": status, **({"reason": reason} if reason else {}), "message": message, **details}
    return web.json_response({"error": body}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        # refuse from the header: waiting for a body that size would hold the connection for nothing
        response = error_response(413, f"request body too large ({request.content_length} bytes; "
                                       f"at most {MAX_BODY_BYTES})", reason="invalid")
        response.force_close()
        return response
    try:
        return await handler(request)
    except KilodError as exc:
        return error_response(exc.status, exc.message, reason=exc.reason, **exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error; see the daemon's log")


async def read_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        raise Invalid("request body is empty; send a JSON object")
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Invalid(f"malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    return body


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse(model: type[ModelT], body: dict[str, Any]) -> ModelT:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Invalid(validation_message(exc)) from None


def validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _repo_query(request: web.Request) -> str:
    repo = request.query.get("repo", "")
    if not repo:
        raise Invalid("name the repository: ?repo=/absolute/path", field="repo")
    return repo


def _base_query(request: web.Request) -> str:
    """`?base=REF`: the commit whose sandbox files to show (HEAD unless named), as a card's base is read."""
    return request.query.get("base") or "HEAD"


@dataclass(frozen=True)
class Services:
    """What the routes call: one object per job."""

    cards: Cards
    board: Board
    queries: Queries
    landing: Landing
    commands: Commands
    shelf: Shelf
    store: Store
    events: EventLog
    metrics: Metrics


class Api:
    def __init__(self, services: Services, on_change: Callable[[], None], on_shutdown: Callable[[], None],
                 status: Callable[[], dict[str, Any]]) -> None:
        self.cards = services.cards
        self.board = services.board
        self.queries = services.queries
        self.landing = services.landing
        self.commands = services.commands
        self.shelf = services.shelf
        self.metrics = services.metrics
        self.store = services.store
        self.events = services.events
        self.on_change = on_change
        self.on_shutdown = on_shutdown
        self.status = status

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/metrics", self.get_metrics),
            web.get("/v1/openapi.json", self.openapi),
            web.get("/v1/status", self.get_status),
            web.get("/v1/meta", self.get_meta),
            web.post("/v1/cards", self.create_card),
            web.get("/v1/cards", self.list_cards),
            web.get("/v1/cards/{card_id}", self.get_card),
            web.get("/v1/cards/{card_id}/compare", self.compare),
            web.post("/v1/cards/{card_id}/archive", self.archive_card),
            web.post("/v1/cards/{card_id}/unarchive", self.unarchive_card),
            web.delete("/v1/cards/{card_id}", self.delete_card),
            web.get("/v1/board", self.get_board),
            web.get("/v1/attempts/{attempt_id}", self.get_attempt),
            web.get("/v1/attempts/{attempt_id}/events", self.attempt_events),
            web.get("/v1/attempts/{attempt_id}/diffstat", self.attempt_diffstat),
            web.get("/v1/attempts/{attempt_id}/diff", self.attempt_diff),
            web.get("/v1/attempts/{attempt_id}/comments", self.list_comments),
            web.post("/v1/attempts/{attempt_id}/comments", self.add_comment),
            web.post("/v1/attempts/{attempt_id}/messages", self.follow_up),
            web.post("/v1/attempts/{attempt_id}/approve", self.approve),
            web.post("/v1/attempts/{attempt_id}/discard", self.discard),
            web.post("/v1/attempts/{attempt_id}/cancel", self.cancel),
            web.post("/v1/attempts/{attempt_id}/pause", self.pause),
            web.post("/v1/attempts/{attempt_id}/resume", self.resume),
            web.post("/v1/attempts/{attempt_id}/retry", self.retry),
            web.post("/v1/attempts/{attempt_id}/shell", self.shell),
            web.get("/v1/repos/trust", self.get_trust),
            web.post("/v1/repos/trust", self.post_trust),
            web.delete("/v1/repos/trust", self.delete_trust),
            web.get("/v1/events", self.all_events),
            web.post("/v1/shutdown", self.shutdown),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "version": __version__})

    async def get_metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(OPENAPI)

    async def get_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def get_meta(self, request: web.Request) -> web.Response:
        return web.json_response(meta())

    async def create_card(self, request: web.Request) -> web.Response:
        card = await self.cards.create_card(parse(NewCard, await read_json(request)))
        self.on_change()
        return web.json_response(card, status=201)

    async def list_cards(self, request: web.Request) -> web.Response:
        return web.json_response({"cards": self.board.cards()})

    async def get_card(self, request: web.Request) -> web.Response:
        return web.json_response(self.board.card(request.match_info["card_id"]))

    async def archive_card(self, request: web.Request) -> web.Response:
        self.shelf.archive(request.match_info["card_id"])
        return web.json_response(self.board.card(request.match_info["card_id"]))

    async def unarchive_card(self, request: web.Request) -> web.Response:
        self.shelf.unarchive(request.match_info["card_id"])
        return web.json_response(self.board.card(request.match_info["card_id"]))

    async def delete_card(self, request: web.Request) -> web.Response:
        return web.json_response(await self.shelf.delete(request.match_info["card_id"]))

    async def compare(self, request: web.Request) -> web.Response:
        return web.json_response(await self.queries.compare(request.match_info["card_id"]))

    async def get_board(self, request: web.Request) -> web.Response:
        per_column = request.query.get("per_column")
        if per_column is not None and not (per_column.isdigit() and len(per_column) <= 6):
            raise Invalid(f"per_column must be a whole number of cards, not '{per_column[:40]}'", field="per_column")
        # the board's cached text: no serialising per request
        return web.Response(text=self.board.board_json(None if per_column is None else int(per_column)),
                            content_type="application/json")

    async def get_attempt(self, request: web.Request) -> web.Response:
        # from the board's projection (kept current by every commit): polled often, and no query on the loop
        return web.json_response(self.board.attempt(request.match_info["attempt_id"]))

    async def attempt_diffstat(self, request: web.Request) -> web.Response:
        return web.json_response(await self.queries.diffstat(request.match_info["attempt_id"]))

    async def attempt_diff(self, request: web.Request) -> web.Response:
        structured, text = await self.queries.diff(request.match_info["attempt_id"])
        if request.query.get("format") == "text":  # git's bytes, names and content exactly as git wrote them
            return web.Response(body=raw(text), content_type="text/x-diff",
                                headers={"X-Kilod-Tree": structured["tree"]})
        if request.query.get("format") == "both":
            structured["text"] = readable(text)
        if request.query.get("format") == "html":  # lines as Pygments HTML, for the web board
            return web.json_response(await asyncio.to_thread(highlight_diff, structured))
        return web.json_response(structured)

    async def list_comments(self, request: web.Request) -> web.Response:
        return web.json_response({"comments": self.queries.comments(request.match_info["attempt_id"])})

    async def add_comment(self, request: web.Request) -> web.Response:
        attempt_id = request.match_info["attempt_id"]
        self.store.get_attempt(attempt_id)
        comment = parse(CommentRequest, await read_json(request))
        created = await self.queries.add_comment(attempt_id, comment.path, comment.line, comment.text)
        return web.json_response(created, status=201)

    async def follow_up(self, request: web.Request) -> web.Response:
        attempt_id = request.match_info["attempt_id"]
        self.store.get_attempt(attempt_id)
        message = parse(FollowUpRequest, await read_json(request))
        before = self.store.last_seq(attempt_id)
        attempt = await self.commands.follow_up(attempt_id, message.text)
        # what the follow-up starts comes after this seq: `Last-Event-ID: follow_from_seq`
        return web.json_response({**attempt.to_json(), "follow_from_seq": before}, status=202)

    async def approve(self, request: web.Request) -> web.Response:
        attempt_id = request.match_info["attempt_id"]
        self.store.get_attempt(attempt_id)
        body = await read_json(request) if request.can_read_body else {}
        choice = parse(ApproveRequest, body)
        return web.json_response(await self.landing.approve(attempt_id, choice.message, choice.merge, choice.tree))

    async def discard(self, request: web.Request) -> web.Response:
        return web.json_response((await self.landing.discard(request.match_info["attempt_id"])).to_json())

    async def cancel(self, request: web.Request) -> web.Response:
        return web.json_response((await self.commands.cancel(request.match_info["attempt_id"])).to_json())

    async def pause(self, request: web.Request) -> web.Response:
        attempt = await self.commands.pause(request.match_info["attempt_id"])
        return web.json_response(attempt.to_json(), status=202)

    async def resume(self, request: web.Request) -> web.Response:
        attempt_id = request.match_info["attempt_id"]
        self.store.get_attempt(attempt_id)
        body = await read_json(request) if request.can_read_body else {}
        resume = parse(ResumeRequest, body)
        return web.json_response((await self.commands.resume(attempt_id, resume.text)).to_json(), status=202)

    async def retry(self, request: web.Request) -> web.Response:
        attempt = await self.commands.retry(request.match_info["attempt_id"])
        return web.json_response(attempt.to_json(), status=201)

    async def shell(self, request: web.Request) -> web.Response:
        return web.json_response(await self.commands.shell_target(request.match_info["attempt_id"]))

    async def get_trust(self, request: web.Request) -> web.Response:
        return web.json_response(await self.cards.trust.view_of(_repo_query(request), _base_query(request)))

    async def post_trust(self, request: web.Request) -> web.Response:
        choice = parse(TrustRequest, await read_json(request))
        return web.json_response(await self.cards.trust.trust_of(choice.repo, choice.sha256, choice.base))

    async def delete_trust(self, request: web.Request) -> web.Response:
        return web.json_response(await self.cards.trust.revoke_of(_repo_query(request), _base_query(request)))

    async def attempt_events(self, request: web.Request) -> web.StreamResponse:
        attempt_id = request.match_info["attempt_id"]
        self.store.get_attempt(attempt_id)  # 404 before a stream starts
        return await self._events(request, attempt_id)

    async def all_events(self, request: web.Request) -> web.StreamResponse:
        return await self._events(request, None)

    async def _events(self, request: web.Request, attempt_id: str | None) -> web.StreamResponse:
        after_text = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
        try:
            after = int(after_text)
        except ValueError:
            raise Invalid(f"Last-Event-ID / after must be an integer, got '{after_text}'") from None
        if "text/event-stream" not in request.headers.get("Accept", ""):
            events = [e.to_json() async for e in self.events.follow(attempt_id, after, live=False)]
            return web.json_response({"events": events})
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        })
        await response.prepare(request)

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(SSE_HEARTBEAT_SECONDS)
                await response.write(b": keep-alive\n\n")

        beating = asyncio.create_task(heartbeat())
        try:
            async for event in self.events.follow(attempt_id, after):
                position = event.seq if attempt_id is not None else event.id
                frame = f"id: {position}\nevent: {event.kind}\ndata: {json.dumps(event.to_json())}\n\n"
                await response.write(frame.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await beating
        return response

    async def shutdown(self, request: web.Request) -> web.Response:
        asyncio.get_running_loop().call_later(0.1, self.on_shutdown)
        return web.json_response({"ok": True, "message": "daemon is stopping"}, status=202)


def make_app(api: Api) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY_BYTES)
    app.add_routes(api.routes())
    return app
