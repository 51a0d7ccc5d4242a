"""HTTP over the daemon's unix socket, with the standard library only (it must import fast).

Every failure becomes a `CliError` that carries the exit code the CLI returns:
3 when no daemon answers, 1 for everything else (the daemon's own 4xx/5xx included).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

EXIT_FAILURE = 1
EXIT_NOT_RUNNING = 3

# Creating a card may wait for the daemon to finish importing litellm (to check a model name).
REQUEST_TIMEOUT_SECONDS = 120.0
# The daemon sends a keep-alive comment every 15 s; silence much longer than that means it hung.
STREAM_TIMEOUT_SECONDS = 90.0
PROBE_TIMEOUT_SECONDS = 2.0

# Attempt states as the API names them (kilod.domain.State, which the CLI must not import).
LIVE_STATES = frozenset({"queued", "starting", "running"})
RESTING_STATES = frozenset({"review", "failed", "cancelled", "approved", "discarded"})


class CliError(Exception):
    """A failure to report as `kilod: <message>` with this exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DaemonNotRunning(CliError):
    exit_code = EXIT_NOT_RUNNING

    def __init__(self, socket_path: Path) -> None:
        super().__init__(
            f"the daemon is not running (no socket at {socket_path}); "
            "start it with 'kilod serve' or 'kilod demo'"
        )
        self.socket_path = socket_path


class ApiError(CliError):
    """The daemon answered with a 4xx or 5xx; `message` is its own explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def connect_unix(path: Path, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
    except BaseException:
        sock.close()
        raise
    return sock


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection whose transport is a unix socket instead of TCP."""

    def __init__(self, socket_path: Path, timeout: float | None) -> None:
        # The host only fills the Host header; "localhost" is what the daemon expects from local clients.
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = connect_unix(self.socket_path, self.timeout)


@dataclass(frozen=True)
class SseFrame:
    id: str | None
    event: str
    data: str


def read_sse(lines: Iterable[bytes]) -> Iterator[SseFrame]:
    """Frames of a text/event-stream, from its raw lines (as `readline` returns them).

    Follows the WHATWG rules the daemon needs: comment lines (`: keep-alive`) are
    skipped, `data` lines join with newlines, a blank line ends a frame, and a frame
    cut off by the end of the stream is dropped.
    """
    frame_id: str | None = None
    event = ""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield SseFrame(frame_id, event or "message", "\n".join(data))
            frame_id, event, data = None, "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id":
            frame_id = value


def _error_message(status: int, reason: str, body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        return str(error["message"])
    except (ValueError, KeyError, TypeError):
        return f"the daemon answered HTTP {status} {reason}"


class Client:
    """JSON requests and event streams to one daemon."""

    def __init__(self, socket_path: Path, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def _open(self, timeout: float | None) -> UnixHTTPConnection:
        connection = UnixHTTPConnection(self.socket_path, timeout)
        try:
            connection.connect()
        except (FileNotFoundError, ConnectionRefusedError):
            raise DaemonNotRunning(self.socket_path) from None
        except PermissionError:
            raise CliError(f"cannot connect to {self.socket_path}: permission denied "
                           "(the socket belongs to another user)") from None
        except OSError as exc:
            raise CliError(f"cannot connect to {self.socket_path}: {exc.strerror or exc}") from None
        return connection

    def _send(self, connection: UnixHTTPConnection, method: str, path: str,
              body: dict[str, Any] | None, headers: dict[str, str]) -> http.client.HTTPResponse:
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **headers}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=payload, headers=all_headers)
            response = connection.getresponse()
        except TimeoutError:
            raise CliError(f"the daemon did not answer {method} {path} within {self.timeout:g} s") from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise CliError(f"the daemon closed the connection during {method} {path} ({exc!r})") from None
        if response.status >= 400:
            raise ApiError(response.status, _error_message(response.status, response.reason, response.read()))
        return response

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        connection = self._open(self.timeout)
        try:
            response = self._send(connection, method, path, body, {})
            try:
                raw = response.read()
            except (TimeoutError, http.client.HTTPException, ConnectionError) as exc:
                raise CliError(f"the answer to {method} {path} was cut off ({exc!r})") from None
        finally:
            connection.close()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise CliError(f"the daemon answered {method} {path} with something that is not JSON") from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body)

    def stream(self, path: str, last_event_id: int | None = None) -> Iterator[dict[str, Any]]:
        """Events from an SSE endpoint, replayed after `last_event_id` and then followed live.

        Ends when the daemon closes the stream (it does so when it shuts down).
        """
        connection = self._open(STREAM_TIMEOUT_SECONDS)
        try:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = str(last_event_id)
            response = self._send(connection, "GET", path, None, headers)
            try:
                for frame in read_sse(iter(response.readline, b"")):
                    try:
                        event = json.loads(frame.data)
                    except ValueError:
                        raise CliError(f"the daemon sent an event on {path} that is not JSON") from None
                    yield event
            except TimeoutError:
                raise CliError(f"the daemon sent nothing on {path} for {STREAM_TIMEOUT_SECONDS:g} s") from None
            except (http.client.HTTPException, ConnectionError):
                return  # the daemon went away mid-stream: same as the stream ending
        finally:
            connection.close()

    def healthy(self) -> bool:
        """True if a daemon answers /healthz on the socket right now."""
        probe = Client(self.socket_path, PROBE_TIMEOUT_SECONDS)
        try:
            answer = probe.get("/healthz")
        except CliError:
            return False
        return isinstance(answer, dict) and answer.get("ok") is True


def segment(value: str) -> str:
    """An id as one safe path segment (ids come from the command line)."""
    return quote(value, safe="")
