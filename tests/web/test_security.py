"""The TCP listener against a real daemon, with plain HTTP: token, Host (DNS rebinding), Origin (CSRF), tickets."""

from __future__ import annotations

import http.client
import json
import stat
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.web.conftest import WebDaemon

pytestmark = pytest.mark.docker


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()

    def json(self) -> Any:
        return json.loads(self.body)


def call(web: WebDaemon, method: str, path: str, headers: dict[str, str] | None = None,
         body: Any = None) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    try:
        all_headers = {"Host": f"127.0.0.1:{web.port}", **(headers or {})}
        payload = None if body is None else json.dumps(body).encode()
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=all_headers)
        return Answer(connection.getresponse())
    finally:
        connection.close()


def cards_count(web: WebDaemon) -> int:
    return len(web.daemon.request("GET", "/v1/cards")["cards"])


def bearer(web: WebDaemon) -> dict[str, str]:
    return {"Authorization": f"Bearer {web.token}"}


def log_in(web: WebDaemon) -> str:
    """Redeem a fresh ticket; the session cookie as a `Cookie` header value."""
    ticket = urlsplit(web.login_url())
    answer = call(web, "GET", f"{ticket.path}?{ticket.query}")
    assert answer.status == 303 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return cookie.split(";", 1)[0]


def test_every_request_needs_the_token(shared_web: WebDaemon) -> None:
    token_file = shared_web.daemon.data_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    for path in ("/v1/status", "/v1/board", "/", "/static/app.js", "/healthz"):
        answer = call(shared_web, "GET", path)
        assert answer.status == 401, path
    assert "token" in call(shared_web, "GET", "/v1/board").json()["error"]["message"]
    assert call(shared_web, "GET", "/v1/board", {"Authorization": "Bearer not-the-token"}).status == 401
    assert call(shared_web, "GET", "/v1/board", {"Authorization": f"Basic {shared_web.token}"}).status == 401
    forged = f"kilod_session_{shared_web.port}=9999999999.forged"
    assert call(shared_web, "GET", "/v1/board", {"Cookie": forged}).status == 401
    before = cards_count(shared_web)
    refused = call(shared_web, "POST", "/v1/cards", {"Origin": shared_web.origin},
                   {"prompt": "x", "repo": "/"})
    assert refused.status == 401
    assert cards_count(shared_web) == before

    ok = call(shared_web, "GET", "/v1/board", bearer(shared_web))
    assert ok.status == 200 and [c["title"] for c in ok.json()["columns"]] == [
        "To Do", "Doing", "Review", "Done", "Closed"]
    assert ok.headers["Cache-Control"] == "no-store"
    page = call(shared_web, "GET", "/", bearer(shared_web))
    assert page.status == 200 and b"/static/app.js" in page.body
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    css = call(shared_web, "GET", "/static/highlight.css", bearer(shared_web))
    assert css.status == 200 and b".hl .k" in css.body and b"prefers-color-scheme: dark" in css.body
    # a browser without a session gets a page that says how to log in
    html = call(shared_web, "GET", "/", {"Accept": "text/html"})
    assert html.status == 401 and b"kilod ctl web" in html.body


def test_foreign_host_is_refused_even_with_the_token(shared_web: WebDaemon) -> None:
    port = shared_web.port
    for host in (f"evil.example:{port}", "attacker.test", f"127.0.0.1.nip.io:{port}", f"127.0.0.1:{port + 1}", ""):
        answer = call(shared_web, "GET", "/v1/status", {**bearer(shared_web), "Host": host})
        assert answer.status == 403, host
        assert "address" in answer.json()["error"]["message"]
    assert call(shared_web, "GET", "/login?ticket=x", {"Host": f"evil.example:{port}"}).status == 403
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert call(shared_web, "GET", "/v1/status", {**bearer(shared_web), "Host": host}).status == 200, host


def test_foreign_origin_is_refused_on_changes(shared_web: WebDaemon, repo: Any) -> None:
    card = {"prompt": "say hello", "repo": str(repo), "models": ["scripted/hello"]}
    before = cards_count(shared_web)
    evil = "http://evil.example"
    for headers in ({"Origin": evil}, {"Origin": "null"}, {"Origin": f"http://localhost:{shared_web.port + 1}"},
                    {"Referer": f"{evil}/page"}):
        answer = call(shared_web, "POST", "/v1/cards", {**bearer(shared_web), **headers}, card)
        assert answer.status == 403, headers
        assert "cross-origin" in answer.json()["error"]["message"]
    cookie = log_in(shared_web)
    assert call(shared_web, "POST", "/v1/cards", {"Cookie": cookie, "Origin": evil}, card).status == 403
    # with the session cookie a change must say where it comes from
    assert call(shared_web, "POST", "/v1/cards", {"Cookie": cookie}, card).status == 403
    assert cards_count(shared_web) == before

    # reads are fine with the cookie; changes from the page's own origin go through
    assert call(shared_web, "GET", "/v1/board", {"Cookie": cookie}).status == 200
    created = call(shared_web, "POST", "/v1/cards", {"Cookie": cookie, "Origin": shared_web.origin}, card)
    assert created.status == 201, created.body
    # scripts with the bearer token send no Origin at all
    again = call(shared_web, "POST", "/v1/cards", bearer(shared_web), {**card, "title": "from a script"})
    assert again.status == 201, again.body
    bad = call(shared_web, "POST", "/v1/cards", bearer(shared_web), {"prompt": "x", "repo": "relative/path"})
    assert bad.status == 400 and bad.json()["error"]["message"]


def test_a_ticket_logs_in_once(shared_web: WebDaemon) -> None:
    url = urlsplit(shared_web.login_url())
    assert f"{url.scheme}://{url.netloc}" == shared_web.origin
    first = call(shared_web, "GET", f"{url.path}?{url.query}")
    assert first.status == 303
    session = first.headers["Set-Cookie"].split(";", 1)[0]
    assert call(shared_web, "GET", "/v1/status", {"Cookie": session}).status == 200

    second = call(shared_web, "GET", f"{url.path}?{url.query}")
    assert second.status == 401
    assert "Set-Cookie" not in second.headers
    assert call(shared_web, "GET", "/login?ticket=made-up").status == 401
    assert call(shared_web, "GET", "/login").status == 401
    # logging out drops the cookie in the browser (the page's own origin only)
    out = call(shared_web, "POST", "/logout", {"Cookie": session, "Origin": shared_web.origin})
    assert out.status == 200 and "Max-Age=0" in out.headers["Set-Cookie"]


def test_kilod_ctl_web_prints_a_login_url(shared_web: WebDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from kilod_cli import web as web_verb

    args = argparse.Namespace(socket=str(shared_web.daemon.socket), open=False, show_token=False)
    assert web_verb.run(args) == 0
    out, err = capsys.readouterr()
    url = urlsplit(out.strip())
    assert f"{url.scheme}://{url.netloc}" == shared_web.origin and url.path == "/login"
    assert "once" in err and str(shared_web.daemon.data_dir / "token") in err
    assert shared_web.token not in out + err  # the token is shown only when asked for
    assert call(shared_web, "GET", f"{url.path}?{url.query}").status == 303

    assert web_verb.run(argparse.Namespace(socket=str(shared_web.daemon.socket), open=False, show_token=True)) == 0
    assert capsys.readouterr().out.splitlines()[1] == shared_web.token


def test_metrics_on_tcp_need_the_token_unless_made_public(shared_web: WebDaemon, web_daemon_factory: Any) -> None:
    assert call(shared_web, "GET", "/metrics").status == 401
    scraped = call(shared_web, "GET", "/metrics", bearer(shared_web))
    assert scraped.status == 200 and b"kilod_build_info" in scraped.body

    public = web_daemon_factory({"KILOD_METRICS_PUBLIC": "true",
                                 "KILOD_HTTP_ALLOWED_HOSTS": '["kilod.example.internal"]'})
    assert call(public, "GET", "/metrics").status == 200
    assert call(public, "GET", "/v1/board").status == 401  # only /metrics is opened
    assert call(public, "POST", "/metrics").status in (401, 405)
    # a proxy's name is accepted once configured; any other name still is not
    named = call(public, "GET", "/v1/status", {"Host": f"kilod.example.internal:{public.port}", **bearer(public)})
    assert named.status == 200
    other = call(public, "GET", "/v1/status", {"Host": f"kilod.example.org:{public.port}", **bearer(public)})
    assert other.status == 403
