"""Docker's exec API over the engine's unix socket, with the standard library's HTTP client.

A tool call is three requests: create the exec, start it (its output streams back as
Docker's multiplexed frames until the command ends) and inspect it for the exit code.
Through docker-py each request is a round of requests/urllib3 work in a worker thread,
and a watch thread is started per call for the deadline: with 20 busy attempts that held
the GIL for a quarter of the daemon's samples (py-spy, `bench/api_load.py --profile-mode
gil`), time the event loop spent waiting to answer the API. Here each request is one small
`http.client` exchange on a fresh connection (a unix socket connects in microseconds), and
the deadline is the socket's own timeout, so no thread is started.

Only for an engine on a unix socket (`DOCKER_HOST=unix://…` or the default): kilod
bind-mounts host paths, so its engine is local; others go through docker-py (kilod.sandbox.docker).
Errors are `ExecError`, with the engine's status, for the sandbox to map.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

DEFAULT_SOCKET = "/var/run/docker.sock"
FRAME_HEADER = 8   # stream type (1 byte), 3 zero bytes, payload size (4 bytes, big-endian)


class ExecError(Exception):
    """The engine refused a request (`status` its HTTP status) or could not be reached (`status` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def engine_socket() -> str | None:
    """The engine's unix socket as docker-py finds it (DOCKER_HOST), or None for an engine elsewhere."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    return host.removeprefix("unix://") if host.startswith("unix://") else None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path
        # kept: a response read to its end (Docker's streams) takes the socket over, `sock` becomes None
        self.unix_socket: socket.socket | None = None

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = self.unix_socket = sock


class ExecClient:
    def __init__(self, socket_path: str, api_version: str, timeout: float = 60.0) -> None:
        self.socket_path = socket_path
        self.prefix = f"/v{api_version}"
        self.timeout = timeout   # for create and inspect; a start's stream has its own deadline

    def _send(self, method: str, path: str, body: dict[str, Any] | None, timeout: float
              ) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        connection = _UnixConnection(self.socket_path, timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, self.prefix + path, body=payload, headers=headers)
            response = connection.getresponse()
        except OSError as exc:
            connection.close()
            raise ExecError(f"cannot reach the Docker engine at {self.socket_path}: {exc}") from exc
        if response.status >= 400:
            try:
                raw = response.read()
            finally:
                connection.close()
            raise ExecError(_message(raw, response.status), response.status)
        return connection, response

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        connection, response = self._send(method, path, body, self.timeout)
        try:
            return json.loads(response.read() or b"null")
        except (OSError, ValueError) as exc:
            raise ExecError(f"the Docker engine's answer to {method} {path} broke: {exc}") from exc
        finally:
            connection.close()

    def create(self, container_id: str, argv: list[str], workdir: str, user: str) -> str:
        created = self._json("POST", f"/containers/{quote(container_id, safe='')}/exec", {
            "AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "Tty": False,
            "Cmd": argv, "WorkingDir": workdir, "User": user, "Privileged": False,
        })
        return str(created["Id"])

    def start(self, exec_id: str, deadline: float) -> Iterator[bytes]:
        """The command's output (stdout and stderr as written) until it ends; TimeoutError at `deadline`
        (a `time.monotonic()` value), when the stream is closed whatever still holds it open."""
        connection, response = self._send("POST", f"/exec/{quote(exec_id, safe='')}/start",
                                          {"Detach": False, "Tty": False}, self.timeout)
        try:
            yield from _frames(connection, response, deadline)
        finally:
            connection.close()

    def exit_code(self, exec_id: str) -> int | None:
        """The command's exit code; None while it runs."""
        return exit_code_of(self._json("GET", f"/exec/{quote(exec_id, safe='')}/json"))


def exit_code_of(inspected: Any) -> int | None:
    """An exec inspect's exit code; None while the engine says it runs (or has none recorded)."""
    code = inspected.get("ExitCode") if isinstance(inspected, dict) else None
    return int(code) if isinstance(code, int) and not inspected.get("Running") else None


def _frames(connection: _UnixConnection, response: http.client.HTTPResponse, deadline: float) -> Iterator[bytes]:
    """Payloads of the multiplexed frames Docker writes until the command ends (it then closes)."""
    pending = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the exec's deadline passed")
        if connection.unix_socket is not None:
            connection.unix_socket.settimeout(left)
        try:
            chunk = response.read1(65536)
        except TimeoutError:
            raise   # the deadline, the caller's to report (a TimeoutError is an OSError too)
        except (OSError, http.client.HTTPException) as exc:
            raise ExecError(f"the output stream broke ({exc})") from exc
        if not chunk:
            return
        pending += chunk
        while len(pending) >= FRAME_HEADER:
            size = int.from_bytes(pending[4:FRAME_HEADER], "big")
            if len(pending) < FRAME_HEADER + size:
                break
            yield pending[FRAME_HEADER:FRAME_HEADER + size]
            pending = pending[FRAME_HEADER + size:]


def _message(raw: bytes, status: int) -> str:
    try:
        found = json.loads(raw).get("message")
    except (ValueError, AttributeError):
        found = None
    return str(found or raw.decode("utf-8", "replace").strip() or f"HTTP {status}")
