"""Exec over the engine's socket (and through docker-py, for engines elsewhere): the same results either way."""

from __future__ import annotations

import os
import time
from pathlib import Path

import docker
import pytest

from kilod.errors import Unavailable
from kilod.sandbox.base import ContainerSpec
from kilod.sandbox.docker import DockerSandbox, settled_exit_code
from kilod.sandbox.docker_exec import DEFAULT_SOCKET, engine_socket
from tests.daemon.sandbox.test_docker import spec  # noqa: F401  (the fixture)

TRANSPORTS = ["socket", "docker-py"]


def sandbox_by(transport: str) -> DockerSandbox:
    sandbox = DockerSandbox()
    if transport == "docker-py":   # what an engine on tcp:// gets
        sandbox.__dict__["_exec_client"] = None
    else:
        assert sandbox._exec_client is not None
    return sandbox


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exit_codes_output_and_streamed_pieces_are_the_same_either_way(transport: str,
                                                                       spec: ContainerSpec) -> None:  # noqa: F811
    sandbox = sandbox_by(transport)
    made = sandbox.ensure(spec)
    pieces: list[str] = []

    # stdout and stderr are two streams: a pause between them keeps the order they are written in
    command = "echo out; sleep 0.2; echo err >&2; sleep 0.2; echo $KILOD_TEST_SETTING; id -u; exit 3"
    result = sandbox.exec(made, command, 30, on_output=pieces.append)

    assert (result.exit_code, result.timed_out) == (3, False)
    assert result.output == f"out\nerr\non\n{spec.uid}\n" and "".join(pieces) == result.output
    assert len(pieces) >= 2   # handed over as it came
    assert sandbox.exec(made, "id -u", 30, user="0:0").output == "0\n"
    assert sandbox.exec(made, "sleep 30", 1).timed_out   # the command's own timeout


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_stream_held_open_past_the_limit_is_cut_off(transport: str, spec: ContainerSpec) -> None:  # noqa: F811
    sandbox = sandbox_by(transport)
    made = sandbox.ensure(spec)
    run = sandbox._exec_sdk if transport == "docker-py" else sandbox._exec_lean
    seen: list[bytes] = []
    started = time.monotonic()

    # no `timeout` here: only the limit ends the wait (what EXEC_GRACE guards against)
    timed_out, code = run(made, ["sh", "-c", "echo before; sleep 20"], "", 1.0, seen.append)

    assert (timed_out, code, b"".join(seen)) == (True, None, b"before\n")
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_exec_in_a_removed_container_says_it_is_gone(transport: str, spec: ContainerSpec) -> None:  # noqa: F811
    sandbox = sandbox_by(transport)
    made = sandbox.ensure(spec)
    docker.from_env().containers.get(made).remove(force=True)

    with pytest.raises(Unavailable, match=f"container {made[:12]} is gone"):
        sandbox.exec(made, "true", 30)


def test_the_engine_socket_is_where_docker_host_says(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert engine_socket() == DEFAULT_SOCKET
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    assert engine_socket() == f"{tmp_path}/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert engine_socket() is None
    assert os.environ["DOCKER_HOST"].startswith("tcp://")


def test_an_exit_code_the_engine_has_not_recorded_yet_is_asked_for_again() -> None:
    answers = [None, None, 7]   # the stream ended; the engine is still processing the exit

    assert settled_exit_code(lambda: answers.pop(0)) == 7
    assert answers == []
