"""HTTP/1.1 on the daemon's unix socket: the part of it the CLI speaks, standard library only.

`http.client` would do, but importing it pulls in the `email` package (its header parser)
and `ssl`: on a short command such as `ctl board` that was about a third of the CLI's own
start. The daemon is kilod's (aiohttp) and the CLI asks one thing per connection, so this
needs only: a request with a Content-Length, an answer's status line and headers, and a
body sized by Content-Length, sent chunked (event streams), or ended by the connection
closing. Anything else in an answer is a `ProtocolError`, never a guess.
"""

from __future__ import annotations

import io
import socket

MAX_LINE_BYTES = 65_536   # a status, header or chunk-size line longer than this is not the daemon's
MAX_HEADERS = 100
READ_BYTES = 65_536


class ProtocolError(Exception):
    """The answer was cut off or is not HTTP/1.x as the daemon sends it."""


def send(sock: socket.socket, method: str, path: str, headers: dict[str, str], body: bytes | None) -> None:
    """One request; `Connection: close`, since each connection carries one request and its answer."""
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))


def _line(stream: io.BufferedReader) -> bytes:
    line = stream.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError("a line of the answer is too long")
    return line


class Response:
    """An answer's status and headers (names lower-cased); its body through `read` or `readline`."""

    def __init__(self, stream: io.BufferedReader) -> None:
        self._stream = stream
        status_line = _line(stream)
        if not status_line:
            raise ProtocolError("the connection closed before an answer")
        version, _, rest = status_line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, self.reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit() or len(code) != 3:
            raise ProtocolError(f"not an HTTP answer: {status_line[:80]!r}")
        self.status = int(code)
        self.headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = _line(stream).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"a malformed header line: {line[:80]!r}")
            self.headers[name.strip().lower()] = value.strip()
        else:
            raise ProtocolError("too many header lines")
        self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        length = self.headers.get("content-length")
        if self._chunked or length is None:
            self._left: int | None = None
        elif length.isdigit():
            self._left = int(length)
        else:
            raise ProtocolError(f"a malformed Content-Length: {length!r}")
        if self.status in (204, 304) or 100 <= self.status < 200:
            self._left, self._chunked = 0, False
        self._chunk_left = 0
        self._done = False
        self._buffer = b""

    def _piece(self) -> bytes:
        """The next bytes of the body (b"" at its end), read as it was framed."""
        if self._done:
            return b""
        if self._chunked:
            if self._chunk_left == 0:
                size = _line(self._stream).split(b";", 1)[0].strip()
                try:
                    self._chunk_left = int(size, 16)
                except ValueError:
                    raise ProtocolError(f"a malformed chunk size: {size[:20]!r}") from None
                if self._chunk_left == 0:
                    while _line(self._stream).strip():  # trailers, then the blank line
                        pass
                    self._done = True
                    return b""
            data = self._stream.read1(min(self._chunk_left, READ_BYTES))
            if not data:
                raise ProtocolError("the answer was cut off inside a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0 and self._stream.read(2) != b"\r\n":
                raise ProtocolError("a chunk did not end with CRLF")
            return bytes(data)
        if self._left is None:  # no length: the body ends with the connection
            data = self._stream.read1(READ_BYTES)
            self._done = not data
            return bytes(data)
        if self._left == 0:
            self._done = True
            return b""
        data = self._stream.read1(min(self._left, READ_BYTES))
        if not data:
            raise ProtocolError(f"the answer was cut off ({self._left} bytes missing)")
        self._left -= len(data)
        return bytes(data)

    def read(self) -> bytes:
        """The rest of the body."""
        parts = [self._buffer]
        self._buffer = b""
        while piece := self._piece():
            parts.append(piece)
        return b"".join(parts)

    def readline(self) -> bytes:
        """The body's next line with its b"\\n" (the last one may lack it); b"" at the end."""
        while b"\n" not in self._buffer:
            piece = self._piece()
            if not piece:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += piece
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"


def receive(sock: socket.socket) -> Response:
    return Response(sock.makefile("rb"))
