"""The TCP side: the board page, its static files and the same /v1 API, behind a guard.

The unix socket stays the CLI's channel; this listener is off unless `http` is set.
Every request must come with the daemon's token (`Authorization: Bearer …`, or the
session cookie that a one-time login ticket buys), name this daemon in `Host` (DNS
rebinding) and, when it changes anything, come from the page's own origin (CSRF).
"""

from __future__ import annotations

import html
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from kilod.api import Api, error_response, errors_middleware
from kilod.config import Settings, split_host_port
from kilod.errors import Conflict, Unavailable
from kilod.web.auth import SESSION_SECONDS, TICKET_SECONDS, Credentials, load_token
from kilod.web.highlight import stylesheet

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
LOOPBACK_NAMES = frozenset({"localhost"})
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class HostCheck:
    """Which `Host` headers name this listener (the bound address, and localhost when loopback).

    On a wildcard bind any IP literal is accepted too: a rebinding attack needs a DNS
    name, and an IP literal only reaches this daemon if it is one of its addresses.
    """

    def __init__(self, host: str, port: int, extra: list[str] | None = None) -> None:
        self.host = host
        self.port = port
        self.wildcard = host in WILDCARDS
        names = {host.lower()}
        if is_loopback(host):
            names |= {"localhost", "127.0.0.1"} if host != "::1" else {"localhost"}
        if host.lower() == "localhost":
            names |= {"127.0.0.1", "::1"}
        if self.wildcard:
            names |= {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
        names |= {name.lower() for name in extra or []}
        self.names = frozenset(names)

    def allows(self, header: str) -> bool:
        header = header.strip()
        try:
            name, port = split_host_port(header)
        except ValueError:
            if self.port != 80 or not header or ":" in header.strip("[]"):
                return False
            name, port = header.strip("[]"), 80
        if port != self.port:
            return False
        name = name.lower()
        return name in self.names or (self.wildcard and is_ip(name))

    def public_url(self) -> str:
        """The origin `kilod ctl web` hands out (the CLI runs on this machine)."""
        host = "127.0.0.1" if self.wildcard else self.host
        return f"http://{url_host(host)}:{self.port}"


def origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def wants_html(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def message_page(status: int, title: str, text: str) -> web.Response:
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        "<link rel=icon href='data:,'>"  # no stylesheet: it would need the login this page is about
        f"<title>kilod: {html.escape(title)}</title><main class=message-page><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p><p><code>kilod ctl web</code></p></main></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


class WebBoard:
    """The web board's listener; inert (the login route says it is off) unless `settings.http` is set."""

    def __init__(self, settings: Settings, api: Api) -> None:
        self.settings = settings
        self.api = api
        address = settings.http_address
        self.hosts = HostCheck(*address, extra=settings.http_allowed_hosts) if address else None
        self._credentials: Credentials | None = None
        self._runner: web.AppRunner | None = None

    @property
    def enabled(self) -> bool:
        return self.hosts is not None

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            token = self.settings.token or load_token(self.settings.token_path)
            self._credentials = Credentials(token)
        return self._credentials

    @property
    def cookie_name(self) -> str:
        # cookies ignore ports: two daemons on one host must not overwrite each other's session
        assert self.hosts is not None
        return f"kilod_session_{self.hosts.port}"

    # -- the unix socket's side -----------------------------------------------

    def unix_routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/web/login", self.issue_login)]

    async def issue_login(self, request: web.Request) -> web.Response:
        """A one-time login URL for `kilod ctl web` (only the daemon's user reaches the socket)."""
        if self.hosts is None:
            raise Conflict("the web board is off; start the daemon with `kilod serve --http 127.0.0.1:8765` "
                           "(or set KILOD_HTTP)")
        ticket, expires = self.credentials.issue_ticket()
        origin = self.hosts.public_url()
        return web.json_response({
            "url": f"{origin}/login?ticket={ticket}",
            "origin": origin,
            "expires_at": expires,
            "expires_in": TICKET_SECONDS,
            "token": self.credentials.token,
            "token_file": None if self.settings.token else str(self.settings.token_path),
        }, status=201)

    # -- the TCP side ---------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard, errors_middleware], client_max_size=4 * 1024 * 1024)
        app.on_response_prepare.append(self._headers)
        app.add_routes([
            web.get("/", self.index),
            web.get("/login", self.login),
            web.post("/logout", self.logout),
            web.get("/static/highlight.css", self.highlight_css),
        ])
        app.router.add_static("/static", STATIC, follow_symlinks=False)
        app.add_routes(self.api.routes())
        return app

    async def start(self) -> None:
        if self.hosts is None:
            return
        self.credentials  # noqa: B018 - create or read the token now, not at the first request
        self._runner = web.AppRunner(self.make_app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.hosts.host or None, self.hosts.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise Unavailable(f"cannot serve the web board on {self.settings.http}: {exc.strerror or exc}") from None
        log.info("web board on %s (run `kilod ctl web` to log in)", self.hosts.public_url())

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        assert self.hosts is not None
        host = request.headers.get("Host", "")
        if not self.hosts.allows(host):
            return error_response(403, f"Host '{host}' is not this daemon's address; "
                                       f"open {self.hosts.public_url()} instead")
        if request.path == "/login" and request.method in SAFE_METHODS:
            return await handler(request)
        if request.path == "/metrics" and request.method in SAFE_METHODS and self.settings.metrics_public:
            return await handler(request)  # a Prometheus scraper carries no token: only when configured
        via = self._authenticated(request)
        if via is None:
            if wants_html(request):
                return message_page(401, "Log in to kilod",
                                    "This board needs a login link. Run this on the daemon's machine:")
            return error_response(401, "missing or wrong token: send 'Authorization: Bearer <token>' "
                                       "(see `kilod ctl web`) or log in through `kilod ctl web`")
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("Origin")
            referer = request.headers.get("Referer")
            source = origin.lower() if origin is not None else (origin_of(referer) if referer else None)
            if source is None and via == "cookie":
                return error_response(403, "a change made with the session cookie must name its Origin")
            if source is not None and source != f"http://{host}".lower():
                return error_response(403, f"cross-origin request from '{source}' refused")
        return await handler(request)

    def _authenticated(self, request: web.Request) -> str | None:
        """'bearer' or 'cookie' when the request carries a valid credential, else None."""
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            ok = scheme.lower() == "bearer" and self.credentials.bearer_ok(value.strip())
            return "bearer" if ok else None
        cookie = request.cookies.get(self.cookie_name)
        if cookie and self.credentials.session_ok(cookie):
            return "cookie"
        return None

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.path.startswith("/static/"):
            headers.setdefault("Cache-Control", "no-cache")
        else:
            headers.setdefault("Cache-Control", "no-store")

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def highlight_css(self, request: web.Request) -> web.Response:
        return web.Response(text=stylesheet(), content_type="text/css")

    async def login(self, request: web.Request) -> web.Response:
        if request.method == "HEAD":  # a link checker must not use up the ticket
            return web.Response(status=204)
        ticket = request.query.get("ticket", "")
        if not ticket or not self.credentials.redeem(ticket):
            return message_page(401, "This login link has expired",
                                "A login link works once, for five minutes. For a new one, run:")
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(self.cookie_name, self.credentials.new_session(), max_age=SESSION_SECONDS,
                            path="/", httponly=True, samesite="Strict")
        return response

    async def logout(self, request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.del_cookie(self.cookie_name, path="/")
        return response

