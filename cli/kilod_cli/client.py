"""Requests and event streams to the daemon over its unix socket (HTTP/1.1 by `wire`; it must import fast).

Every failure becomes a `CliError` that carries the exit code the CLI returns:
3 when no daemon answers, 1 for everything else (the daemon's own 4xx/5xx included).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from kilod_cli.wire import ProtocolError, Response, receive, send

if TYPE_CHECKING:
    from kilod_cli.meta import Meta

EXIT_FAILURE = 1
EXIT_NOT_RUNNING = 3

# Creating a card may wait for the daemon to finish importing litellm (to check a model name).
REQUEST_TIMEOUT_SECONDS = 120.0
# The daemon sends a keep-alive comment every 15 s; silence much longer than that means it hung.
STREAM_TIMEOUT_SECONDS = 90.0
PROBE_TIMEOUT_SECONDS = 2.0
# After the event stream drops, how long before connecting again.
RECONNECT_SECONDS = 1.0
# Events that change nothing a board shows: a running command's output comes several times a second.
UNCHANGING_KINDS = frozenset({"output"})


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
    """The daemon answered with a 4xx or 5xx; `message` is its own explanation.

    `details` holds the error's other fields (a merge conflict's `paths`, for one).
    """

    def __init__(self, status: int, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.details = details or {}


def connect_unix(path: Path, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
    except BaseException:
        sock.close()
        raise
    return sock


class SseFrame(NamedTuple):  # not a dataclass: importing dataclasses costs a short command ~10 ms
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


def _api_error(status: int, reason: str, body: bytes) -> ApiError:
    try:
        error = json.loads(body)["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        return ApiError(status, f"the daemon answered HTTP {status} {reason}")
    details = {key: value for key, value in error.items() if key not in ("status", "message")}
    return ApiError(status, message, details)


class Client:
    """JSON requests and event streams to one daemon."""

    def __init__(self, socket_path: Path, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._meta: Meta | None = None

    def meta(self) -> Meta:
        """The daemon's states, their groupings and its columns (`GET /v1/meta`), asked once."""
        if self._meta is None:
            from kilod_cli.meta import fetch_meta

            self._meta = fetch_meta(self.get, str(self.socket_path))
        return self._meta

    def _open(self, timeout: float | None) -> socket.socket:
        try:
            return connect_unix(self.socket_path, timeout)
        except (FileNotFoundError, ConnectionRefusedError):
            raise DaemonNotRunning(self.socket_path) from None
        except PermissionError:
            raise CliError(f"cannot connect to {self.socket_path}: permission denied "
                           "(the socket belongs to another user)") from None
        except OSError as exc:
            raise CliError(f"cannot connect to {self.socket_path}: {exc.strerror or exc}") from None

    def _send(self, connection: socket.socket, method: str, path: str,
              body: dict[str, Any] | None, headers: dict[str, str]) -> Response:
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **headers}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        try:
            send(connection, method, path, all_headers, payload)
            response = receive(connection)
        except TimeoutError:
            raise CliError(f"the daemon did not answer {method} {path} within {self.timeout:g} s") from None
        except (ProtocolError, OSError) as exc:  # a reset, a broken pipe, a socket shut from another thread
            raise CliError(f"the daemon closed the connection during {method} {path} ({exc!r})") from None
        if response.status >= 400:
            try:
                said = response.read()
            except (ProtocolError, OSError):  # cut off: the status alone is the answer
                said = b""
            raise _api_error(response.status, response.reason, said)
        return response

    def _read(self, method: str, path: str, body: dict[str, Any] | None,
              headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        connection = self._open(self.timeout)
        try:
            response = self._send(connection, method, path, body, headers)
            try:
                return response.read(), response.headers
            except (ProtocolError, OSError) as exc:  # TimeoutError included
                raise CliError(f"the answer to {method} {path} was cut off ({exc!r})") from None
        finally:
            connection.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        raw, _ = self._read(method, path, body, {})
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise CliError(f"the daemon answered {method} {path} with something that is not JSON") from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body)

    def get_bytes(self, path: str, accept: str) -> tuple[bytes, dict[str, str]]:
        """A non-JSON answer exactly as sent (a diff as text), with its headers (names lower-cased)."""
        return self._read("GET", path, None, {"Accept": accept})

    def stream(self, path: str, last_event_id: int | None = None,
               opened: Callable[[socket.socket], None] | None = None) -> Iterator[dict[str, Any]]:
        """Events from an SSE endpoint, replayed after `last_event_id` and then followed live.

        Ends when the daemon closes the stream (it does so when it shuts down). `opened`
        receives the socket once connected: shutting it down from another thread ends
        the stream.
        """
        connection = self._open(STREAM_TIMEOUT_SECONDS)
        if opened is not None:
            opened(connection)
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
            except (ProtocolError, OSError):
                return  # the daemon went away mid-stream (or we hung up): same as the stream ending
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


class ChangeFeed:
    """Says when anything happened in the daemon, by following `GET /v1/events` in a thread.

    It starts at the `last_event_id` that `/v1/status` reports, so nothing from the past
    is replayed. When the stream drops it connects again from the last id it saw (so no
    event is missed); until it is back, `connected` is False and the reader should poll.
    """

    def __init__(self, client: Client, last_event_id: int) -> None:
        self._client = client
        self.last_event_id = last_event_id
        self.connected = False
        self._dropped = False
        self._changed = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="kilod-events", daemon=True)

    @classmethod
    def start(cls, client: Client) -> ChangeFeed | None:
        """A running feed, or None for a daemon whose status has no `last_event_id` (poll it instead)."""
        status = client.get("/v1/status")
        last = status.get("last_event_id") if isinstance(status, dict) else None
        if not isinstance(last, int) or isinstance(last, bool):
            return None
        feed = cls(client, last)
        feed._thread.start()
        return feed

    def wait(self, timeout: float) -> bool:
        """True as soon as something happened since the last call; False if nothing did within `timeout`.

        Read what changed *after* this returns: whatever happens from here on sets it again.
        """
        changed = self._changed.wait(timeout)
        self._changed.clear()
        return changed

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            if self._socket is not None:
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)  # ends the blocked read in the thread
        self._thread.join(timeout=5)

    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._socket = sock
            if self._stopped.is_set():
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.connected = True
        if self._dropped:  # back after a drop (a daemon restart): look again once, whatever it replays
            self._changed.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                for event in self._client.stream("/v1/events", self.last_event_id, opened=self._opened):
                    if event.get("kind") not in UNCHANGING_KINDS:
                        self._changed.set()
                    event_id = event.get("id")
                    if isinstance(event_id, int):
                        self.last_event_id = event_id
            except CliError:
                pass
            with self._lock:
                self._socket = None
            self.connected = False
            self._dropped = True
            if self._stopped.is_set():
                return
            self._changed.set()  # the reader looks again now (and polls until the stream is back)
            self._stopped.wait(RECONNECT_SECONDS)


def segment(value: str) -> str:
    """An id as one safe path segment (ids come from the command line)."""
    return quote(value, safe="")
