"""The daemon reads and writes an agent's state dir without following the links the agent may leave there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kilod.agents import statefiles
from kilod.agents.process import run_files
from kilod.errors import KilodError


def test_a_link_where_the_daemon_reads_or_writes_never_reaches_the_host(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("sk-live-key\n")
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True)
    os.symlink(secret, state / "session")                  # what an agent can do inside its container
    os.symlink(host_dir, state / "codex")
    os.symlink(host_dir, state / "runs" / "1")

    assert statefiles.read_text(state, "session") is None  # not read through the link
    statefiles.write_text(state, "session", "abc")         # the link is replaced, the target untouched
    assert secret.read_text() == "sk-live-key\n" and statefiles.read_text(state, "session") == "abc"
    with pytest.raises(KilodError):
        statefiles.write_text(state, "codex/config.toml", "x")   # a linked folder is not entered
    with pytest.raises(KilodError):
        statefiles.make_dirs(state, "runs/1")
    assert list(host_dir.iterdir()) == []

    (host_dir / "out").write_text("sk-live-key\n")
    (host_dir / "pid").write_text("1234\n")
    files = run_files(state, "1")
    assert files.tail().rest() == [] and files.pid() is None and files.stderr_tail(100) == ""
    with pytest.raises(KilodError):
        statefiles.write_text(state, "../outside", "x")


def test_state_files_read_and_write_as_plain_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    statefiles.make_dirs(state, "runs/2")
    files = run_files(state, "2")
    (files.host / "out").write_text("one\ntwo\nthree")
    (files.host / "pid").write_text("77\n")
    (files.host / "exit").write_text("3\n")
    (files.host / "err").write_text("x" * 5000 + "last words")
    assert [text for _, text in files.tail().rest()] == ["one", "two", "three"]
    assert (files.pid(), files.exit_status()) == (77, 3)
    assert files.stderr_tail(10) == "last words"
