"""The web board's parts without a daemon: credentials, Host rules, the guard, highlighting, the CLI verb."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kilod.config import Settings, split_host_port
from kilod.errors import Conflict, Invalid
from kilod.web.auth import TICKET_SECONDS, Credentials, load_token
from kilod.web.highlight import highlight_diff, highlight_hunk, lexer_for, stylesheet
from kilod.web.server import HostCheck, WebBoard

TOKEN = "unit-test-token-0123456789"


@pytest.fixture(autouse=True)
def no_outside_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KILOD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KILOD_CONFIG", str(tmp_path / "none.toml"))


# -- settings and credentials ---------------------------------------------------------


def test_http_setting_is_host_and_port(tmp_path: Path) -> None:
    assert split_host_port("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert split_host_port("[::1]:80") == ("::1", 80)
    assert split_host_port("localhost:1") == ("localhost", 1)
    for bad in ("8765", "127.0.0.1", "::1:8765", "host:0", "host:70000", ":8765", "host:port"):
        with pytest.raises(ValueError):
            split_host_port(bad)
    with pytest.raises(ValueError, match="HOST:PORT"):
        Settings(data_dir=tmp_path, http="nope")
    settings = Settings(data_dir=tmp_path, http="127.0.0.1:8765", token=TOKEN)
    assert settings.http_address == ("127.0.0.1", 8765)
    assert "token" not in settings.public() and TOKEN not in repr(settings)
    assert Settings(data_dir=tmp_path).http is None  # off by default


def test_token_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "token"
    token = load_token(path)
    assert len(token) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(path) == token
    path.chmod(0o644)
    assert load_token(path) == token and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("short\n")
    with pytest.raises(Invalid, match="shorter"):
        load_token(path)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(Invalid):
        load_token(link)
    assert not (tmp_path / "elsewhere").exists()


def test_tickets_work_once_and_expire() -> None:
    now = [1000.0]
    credentials = Credentials(TOKEN, clock=lambda: now[0])
    ticket, expires = credentials.issue_ticket()
    assert expires == 1000.0 + TICKET_SECONDS
    assert credentials.redeem(ticket) is True
    assert credentials.redeem(ticket) is False
    late, _ = credentials.issue_ticket()
    now[0] += TICKET_SECONDS + 1
    assert credentials.redeem(late) is False
    assert credentials.redeem("") is False


def test_sessions_are_signed_with_the_token() -> None:
    now = [1000.0]
    credentials = Credentials(TOKEN, clock=lambda: now[0])
    session = credentials.new_session()
    assert credentials.session_ok(session)
    assert TOKEN not in session
    assert not Credentials("another-token-0123456789").session_ok(session)  # a new token ends every session
    expires, _, signature = session.partition(".")
    assert not credentials.session_ok(f"{int(expires) + 1}.{signature}")
    assert not credentials.session_ok("garbage") and not credentials.session_ok(".")
    now[0] = float(expires) + 1
    assert not credentials.session_ok(session)
    assert credentials.bearer_ok(TOKEN) and not credentials.bearer_ok(TOKEN[:-1]) and not credentials.bearer_ok("")


def test_host_rules() -> None:
    loopback = HostCheck("127.0.0.1", 8765)
    assert loopback.allows("127.0.0.1:8765") and loopback.allows("localhost:8765") and loopback.allows("LocalHost:8765")
    for host in ("127.0.0.1:8766", "127.0.0.1", "evil.example:8765", "localhost.evil.example:8765", "[::1]:8765",
                 "10.0.0.1:8765", "", "127.0.0.1:8765:1"):
        assert not loopback.allows(host), host
    assert loopback.public_url() == "http://127.0.0.1:8765"

    v6 = HostCheck("::1", 9000)
    assert v6.allows("[::1]:9000") and v6.allows("localhost:9000") and not v6.allows("127.0.0.1:9000")
    assert v6.public_url() == "http://[::1]:9000"

    lan = HostCheck("192.168.1.5", 8765)
    assert lan.allows("192.168.1.5:8765") and not lan.allows("localhost:8765")

    anywhere = HostCheck("0.0.0.0", 8765)
    assert anywhere.allows("10.1.2.3:8765") and anywhere.allows("localhost:8765") and anywhere.allows("[fe80::1]:8765")
    assert not anywhere.allows("evil.example:8765") and not anywhere.allows("10.1.2.3:80")
    assert anywhere.public_url() == "http://127.0.0.1:8765"

    default_port = HostCheck("127.0.0.1", 80)
    assert default_port.allows("127.0.0.1") and default_port.allows("localhost:80")


# -- the guard, through aiohttp's test client -----------------------------------------


class StubApi:
    """Two routes in the shape of kilod.api.Api.routes()."""

    def routes(self) -> list[web.RouteDef]:
        async def status(request: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        async def create(request: web.Request) -> web.Response:
            return web.json_response({"created": True}, status=201)

        return [web.get("/v1/status", status), web.post("/v1/cards", create)]


async def guarded(tmp_path: Path, **settings: Any) -> tuple[WebBoard, TestClient[Any, Any]]:
    board = WebBoard(Settings(data_dir=tmp_path, **settings), StubApi())  # type: ignore[arg-type]
    client: TestClient[Any, Any] = TestClient(TestServer(board.make_app()))
    await client.start_server()
    return board, client


async def test_guard_through_a_session(tmp_path: Path) -> None:
    board, client = await guarded(tmp_path, http="127.0.0.1:8765", token=TOKEN)
    host = {"Host": "127.0.0.1:8765"}
    origin = "http://127.0.0.1:8765"
    try:
        assert (await client.get("/v1/status", headers=host)).status == 401
        assert (await client.get("/v1/status", headers={"Host": "evil.example:8765"})).status == 403
        # the guard sits in front of errors too: an unknown path is a 404 only once logged in
        assert (await client.get("/nope", headers=host)).status == 401
        ticket, _ = board.credentials.issue_ticket()
        assert (await client.head(f"/login?ticket={ticket}", headers=host)).status == 204  # a link check
        login = await client.get(f"/login?ticket={ticket}", headers=host, allow_redirects=False)
        assert login.status == 303 and login.headers["Location"] == "/"
        cookie = login.headers["Set-Cookie"]
        assert "kilod_session_8765=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        session = {**host, "Cookie": cookie.split(";", 1)[0]}
        assert (await client.get("/v1/status", headers=session)).status == 200
        assert (await client.post("/v1/cards", headers={**session, "Origin": origin})).status == 201
        assert (await client.post("/v1/cards", headers={**session, "Referer": f"{origin}/#/"})).status == 201
        assert (await client.post("/v1/cards", headers={**session, "Origin": "http://evil.example"})).status == 403
        assert (await client.post("/v1/cards", headers=session)).status == 403
        assert (await client.get("/nope", headers=session)).status == 404
        index = await client.get("/", headers=session)
        assert index.status == 200 and "script-src 'self'" in index.headers["Content-Security-Policy"]
        assert (await client.get("/static/../server.py", headers=session)).status in (403, 404)
    finally:
        await client.close()


async def test_login_route_says_when_the_board_is_off(tmp_path: Path) -> None:
    board = WebBoard(Settings(data_dir=tmp_path), StubApi())  # type: ignore[arg-type]
    assert not board.enabled
    await board.start()  # nothing to start
    with pytest.raises(Conflict, match="--http"):
        await board.issue_login(None)  # type: ignore[arg-type]
    assert not (tmp_path / "token").exists()


async def test_login_answer_names_the_token(tmp_path: Path) -> None:
    board = WebBoard(Settings(data_dir=tmp_path, http="localhost:8765"), StubApi())  # type: ignore[arg-type]
    answer = await board.issue_login(None)  # type: ignore[arg-type]
    import json

    login = json.loads(answer.body)  # type: ignore[arg-type]
    assert login["url"].startswith("http://localhost:8765/login?ticket=")
    assert login["token"] == (tmp_path / "token").read_text().strip()
    assert login["token_file"] == str(tmp_path / "token")
    env_board = WebBoard(Settings(data_dir=tmp_path / "b", http="localhost:8765", token=TOKEN),
                         StubApi())  # type: ignore[arg-type]
    env_login = json.loads((await env_board.issue_login(None)).body)  # type: ignore[arg-type]
    assert env_login["token"] == TOKEN and env_login["token_file"] is None


# -- highlighting ---------------------------------------------------------------------


def line(kind: str, text: str, old: int | None = None, new: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "old": old, "new": new, "text": text}


def test_hunks_highlight_each_side_with_classes() -> None:
    lines = [line("context", "def greet(name):", 1, 1), line("delete", '    """Say hi', 2),
             line("add", '    """Say hello', None, 2), line("context", '    to <name>."""', 3, 3),
             line("note", "No newline at end of file")]
    out = highlight_hunk(lexer_for("src/greeter.py"), lines)
    assert [x["kind"] for x in out] == ["context", "delete", "add", "context", "note"]
    assert all("text" not in x and "html" in x for x in out)
    assert '<span class="k">def</span>' in out[0]["html"]
    assert 'class="sd"' in out[3]["html"]  # still inside the docstring opened two lines up
    assert "&lt;name&gt;" in out[3]["html"] and "style=" not in "".join(x["html"] for x in out)


def test_unknown_types_and_odd_lines_fall_back_to_text() -> None:
    plain = highlight_hunk(lexer_for("notes.unknown-extension"), [line("add", "<b>x</b> & y", None, 1)])
    assert plain[0]["html"] == "&lt;b&gt;x&lt;/b&gt; &amp; y"
    carriage = highlight_hunk(lexer_for("a.py"), [line("add", "x = 1\r", None, 1), line("add", "y = 2", None, 2)])
    assert [x["html"] for x in carriage] == ["x = 1\r", "y = 2"]


def test_a_whole_diff_and_the_stylesheet() -> None:
    diff = {"attempt_id": "a-1", "tree": "t", "files": [
        {"path": "README.md", "binary": False,
         "hunks": [{"header": "@@ -0,0 +1 @@", "lines": [line("add", "# Title", None, 1)]}]},
        {"path": "logo.bin", "binary": True, "hunks": []},
    ]}
    out = highlight_diff(diff)
    assert out["format"] == "html" and out["tree"] == "t"
    assert out["files"][0]["language"] == "Markdown"
    assert out["files"][0]["hunks"][0]["lines"][0]["html"] == '<span class="gh"># Title</span>'
    assert out["files"][1]["language"] is None
    assert diff["files"][0]["hunks"][0]["lines"][0]["text"] == "# Title"  # the input is left alone
    css = stylesheet()
    assert ".hl .k {" in css and "@media (prefers-color-scheme: dark)" in css and "background: #" not in css


# -- `kilod ctl web` ----------------------------------------------------------------


def test_the_cli_verb_stays_light() -> None:
    code = ("import sys, kilod_cli.web; heavy = {'aiohttp', 'pydantic', 'litellm', 'docker'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_cli_verb_parses() -> None:
    from kilod_cli import web as web_verb

    parser = argparse.ArgumentParser()
    web_verb.add_parser(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(["web", "--no-open", "--socket", "/tmp/x.sock"])
    assert args.open is False and args.socket == "/tmp/x.sock" and args.handler is web_verb.run
    assert parser.parse_args(["web"]).open is True
