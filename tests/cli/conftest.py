"""Fixtures for the CLI tests: the CLI as a real process, a real daemon (no Docker needed
as long as no card runs), and a fake daemon that answers with canned responses, for
output the real one can only produce with Docker (cards in every state, live events).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import secrets
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kilod import domain
from kilod_cli.client import Client

from . import api_schemas

DAEMON_START_SECONDS = 60.0
CLI_TIMEOUT_SECONDS = 60.0
GIT_IDENTITY = ["-c", "user.name=kilod tests", "-c", "user.email=tests@kilod.invalid",
                "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false"]


@dataclass
class CliEnv:
    """Where one test's CLI and daemon live; everything under a short /tmp dir (socket path limit)."""

    root: Path
    env: dict[str, str]

    @property
    def socket(self) -> Path:
        return Path(self.env["KILOD_SOCKET"])

    @property
    def data_dir(self) -> Path:
        return Path(self.env["KILOD_DATA_DIR"])

    def run(self, *args: str, cwd: Path | None = None, extra_env: dict[str, str] | None = None,
            unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """`python -m kilod_cli.main ARGS` as a real process; stdout and stderr captured apart."""
        return subprocess.run([sys.executable, "-m", "kilod_cli.main", *args], env=self.env_with(extra_env, unset),
                              cwd=cwd or self.root, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS,
                              stdin=subprocess.DEVNULL)

    def env_with(self, extra_env: dict[str, str] | None = None, unset: tuple[str, ...] = ()) -> dict[str, str]:
        env = {**self.env, **(extra_env or {})}
        for key in unset:
            env.pop(key, None)
        return env


@contextlib.contextmanager
def cli_env() -> Iterator[CliEnv]:
    root = Path(tempfile.mkdtemp(prefix="kc-", dir="/tmp"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("KILOD_")}
    env.update(
        KILOD_DATA_DIR=str(root / "data"),
        KILOD_SOCKET=str(root / "kilod.sock"),
        KILOD_INSTANCE=f"test-{secrets.token_hex(4)}",
        KILOD_CONFIG=str(root / "no-config.toml"),  # never the developer's own settings
        NO_COLOR="1",
        COLUMNS="160",
    )
    env.pop("FORCE_COLOR", None)
    try:
        yield CliEnv(root, env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cli() -> Iterator[CliEnv]:
    with cli_env() as env:
        yield env


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class RealDaemon:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_daemon(cli: CliEnv) -> Iterator[RealDaemon]:
    """`python -m kilod` on the env's socket; stopped (SIGTERM, then SIGKILL) afterwards."""
    cli.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = cli.root / "daemon.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "kilod"], env=cli.env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    daemon = RealDaemon(process, log_path)
    try:
        client = Client(cli.socket)
        deadline = time.monotonic() + DAEMON_START_SECONDS
        while not client.healthy():
            if process.poll() is not None:
                pytest.fail(f"the daemon exited with {process.returncode}:\n{daemon.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the daemon did not answer within {DAEMON_START_SECONDS:g} s:\n{daemon.log()}")
            time.sleep(0.1)
        yield daemon
    finally:
        stop_process(process)


@pytest.fixture
def real_daemon(cli: CliEnv) -> Iterator[RealDaemon]:
    """A daemon of the test's own (for tests that stop it)."""
    with running_daemon(cli) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def shared_daemon() -> Iterator[tuple[CliEnv, RealDaemon]]:
    """One daemon for a module's tests that leave it as they found it (starting one takes seconds)."""
    with cli_env() as env, running_daemon(env) as daemon:
        yield env, daemon


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real repository on branch main with one commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hello.txt").write_text("hello\n")
    for args in (["init", "-q"], ["symbolic-ref", "HEAD", "refs/heads/main"], ["add", "hello.txt"],
                 ["commit", "-q", "-m", "initial commit"]):
        subprocess.run(["git", *GIT_IDENTITY, "-C", str(repo), *args], check=True, capture_output=True)
    return repo


# -- a fake daemon ---------------------------------------------------------


GATE_SECONDS = 30.0


@dataclass
class Sse:
    """An SSE answer: raw frames written one chunk each (chunked encoding, as aiohttp sends).

    A `threading.Event` among the chunks holds the stream open until the test sets it.
    """

    chunks: Sequence[str | threading.Event]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Answer = tuple[int, Any] | Sse
Route = Callable[[Recorded], Answer]


# What the fake answers to GET /v1/meta: the daemon's own constants, not a copy of them.
META: dict[str, Any] = dict(domain.meta())


@dataclass
class FakeDaemon:
    """Answers what the test tells it to; every JSON answer must match the daemon's OpenAPI schemas
    (`schema_checked`; off only where it stands in for another API, like Docker's)."""

    socket: Path
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    schema_checked: bool = True
    drift: list[str] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Answer | Route) -> None:
        self.routes[(method, path)] = answer if callable(answer) else (lambda _request: answer)

    @property
    def calls(self) -> list[Recorded]:
        """The requests but those for GET /v1/meta (which the CLI makes once, when it needs the states)."""
        return [r for r in self.requests if r.path != "/v1/meta"]

    def answer(self, request: Recorded) -> Answer:
        self.requests.append(request)
        # a route registered without a query answers any query (GET /v1/board?per_column=N)
        route = self.routes.get((request.method, request.path)) or self.routes.get(
            (request.method, request.path.split("?", 1)[0]))
        if route is None:
            return 404, {"error": {"status": 404, "message": f"no route {request.method} {request.path}"}}
        answer = route(request)
        if self.schema_checked:
            self.drift.extend(self._drift(request, answer))
        return answer

    @staticmethod
    def _drift(request: Recorded, answer: Answer) -> list[str]:
        if isinstance(answer, Sse):
            frames = [chunk for chunk in answer.chunks if isinstance(chunk, str)]
            return [problem for frame in frames for line in frame.splitlines() if line.startswith("data: ")
                    for problem in api_schemas.event_problems(line.removeprefix("data: "))]
        status, body = answer
        if isinstance(body, bytes):
            return []  # text answers (a patch), and the tests that send broken bodies on purpose
        return api_schemas.problems(request.method, request.path, status, body)


def _handler_for(fake: FakeDaemon) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # unix-socket peers have no address to log, and tests want quiet output

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Recorded(self.command, self.path, dict(self.headers.items()),
                               json.loads(raw) if raw else None)
            answer = fake.answer(request)
            if isinstance(answer, Sse):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client hung up
                    for chunk in answer.chunks:
                        if isinstance(chunk, threading.Event):
                            chunk.wait(GATE_SECONDS)
                            continue
                        data = chunk.encode()
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                return
            status, body = answer
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/x-diff" if "format=text" in self.path else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        do_GET = _serve
        do_POST = _serve
        do_DELETE = _serve

    return Handler


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def new_fake_daemon(socket: Path) -> FakeDaemon:
    fake = FakeDaemon(socket)
    fake.on("GET", "/healthz", (200, {"ok": True, "version": "fake"}))
    fake.on("GET", "/v1/meta", (200, META))
    return fake


@contextlib.contextmanager
def serving(fake: FakeDaemon) -> Iterator[FakeDaemon]:
    """`fake` answering on its socket until the block ends (then the socket is gone, as after a daemon stops);
    fails the test if it answered anything the daemon's OpenAPI document does not allow."""
    server = _UnixHTTPServer(str(fake.socket), _handler_for(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            fake.socket.unlink()
    if fake.drift:
        pytest.fail("the fake daemon answered what the daemon's OpenAPI document does not allow:\n"
                    + "\n".join(dict.fromkeys(fake.drift)))


@pytest.fixture
def fake_daemon(cli: CliEnv) -> Iterator[FakeDaemon]:
    """An HTTP server on the test's socket that answers what the test tells it to."""
    with serving(new_fake_daemon(cli.socket)) as fake:
        yield fake
