"""The CLI's HTTP/1.1 (kilod_cli.wire) on a real socket pair: bodies as the daemon frames them, and cut-offs."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator

import pytest

from kilod_cli.wire import ProtocolError, Response, receive, send


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    client, server = socket.socketpair()
    client.settimeout(10)
    yield client, server
    client.close()
    server.close()


def answer(pair: tuple[socket.socket, socket.socket], raw: bytes, close: bool = True) -> Response:
    client, server = pair

    def write() -> None:  # from a thread: a large answer must not wait on a full socket buffer
        with contextlib.suppress(OSError):  # the reader may give up (and the test close both ends) first
            server.sendall(raw)
            if close:
                server.shutdown(socket.SHUT_WR)

    threading.Thread(target=write, daemon=True).start()
    return receive(client)


def test_a_request_says_its_length_and_closes_after_one_answer(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    send(client, "POST", "/v1/cards", {"Accept": "application/json"}, b'{"a": 1}')
    client.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := server.recv(4096):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/cards HTTP/1.1"
    assert {"Host: localhost", "Connection: close", "Accept: application/json", "Content-Length: 8"} <= set(lines)
    assert body == b'{"a": 1}'


def test_a_body_sized_by_content_length(pair: tuple[socket.socket, socket.socket]) -> None:
    response = answer(pair, b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
                            b"\r\nhello and what follows is not the body")
    assert (response.status, response.reason) == (404, "Not Found")
    assert response.headers["content-type"] == "application/json"
    assert response.read() == b"hello"


def test_a_chunked_stream_is_read_line_by_line_across_chunks(pair: tuple[socket.socket, socket.socket]) -> None:
    chunks = [b"data: {\"a\"", b": 1}\n\nid: 7\ndata: x\n", b"\n: keep-alive\n\n"]
    raw = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nTrailer: x\r\n\r\n"
    response = answer(pair, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + raw)
    lines = list(iter(response.readline, b""))
    assert lines == [b'data: {"a": 1}\n', b"\n", b"id: 7\n", b"data: x\n", b"\n", b": keep-alive\n", b"\n"]
    assert response.read() == b""


def test_a_body_without_length_ends_with_the_connection(pair: tuple[socket.socket, socket.socket]) -> None:
    response = answer(pair, b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 200_000)
    assert response.read() == b"x" * 200_000


def test_no_body_for_204(pair: tuple[socket.socket, socket.socket]) -> None:
    assert answer(pair, b"HTTP/1.1 204 No Content\r\n\r\n", close=False).read() == b""


@pytest.mark.parametrize(("raw", "says"), [
    (b"", "closed before an answer"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "cut off (5 bytes missing)"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "malformed Content-Length"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly a bit", "cut off inside a chunk"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000 + b"\r\n\r\n", "too long"),
])
def test_an_answer_that_is_cut_off_or_not_http_is_a_protocol_error(
        pair: tuple[socket.socket, socket.socket], raw: bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(says)):
        answer(pair, raw).read()


def test_a_stream_ends_when_another_thread_shuts_the_socket(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    server.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello\n\r\n")
    response = receive(client)
    assert response.readline() == b"hello\n"
    threading.Timer(0.2, client.shutdown, (socket.SHUT_RDWR,)).start()
    with pytest.raises((ProtocolError, OSError)):
        response.readline()
