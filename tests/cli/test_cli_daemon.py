"""The CLI against a real daemon process. No card here ever runs (that needs Docker):
only requests the daemon rejects, and reads of an empty board."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import CliEnv, RealDaemon

DAEMON_EXIT_SECONDS = 30


@pytest.fixture
def shared_cli(shared_daemon: tuple[CliEnv, RealDaemon]) -> CliEnv:
    return shared_daemon[0]


@pytest.fixture
def shared_process(shared_daemon: tuple[CliEnv, RealDaemon]) -> RealDaemon:
    return shared_daemon[1]


def test_new_with_an_unknown_script_fails_with_the_daemons_message(
        shared_cli: CliEnv, shared_process: RealDaemon, git_repo: Path) -> None:
    result = shared_cli.run("ctl", "new", "say hello", "--repo", str(git_repo), "-m", "scripted/nope")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("kilod: no script named 'nope'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_new_with_a_bad_repo_path_fails(shared_cli: CliEnv, shared_process: RealDaemon) -> None:
    missing = shared_cli.root / "no-such-repo"  # never created
    result = shared_cli.run("ctl", "new", "say hello", "--repo", str(missing), "-m", "scripted/hello")
    assert result.returncode == 1
    assert str(missing) in result.stderr
    assert result.stderr.startswith("kilod: ")


def test_new_takes_the_current_directory_as_the_repo(
        shared_cli: CliEnv, shared_process: RealDaemon, tmp_path: Path) -> None:
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    result = shared_cli.run("ctl", "new", "say hello", "--base", "no-such-ref", "-m", "scripted/hello", cwd=not_a_repo)
    assert result.returncode == 1
    assert f"not a git repository: {not_a_repo.resolve()}" in result.stderr  # the cwd, made absolute


def test_rejected_cards_leave_the_board_empty(
        shared_cli: CliEnv, shared_process: RealDaemon, git_repo: Path) -> None:
    shared_cli.run("ctl", "new", "x", "--repo", str(git_repo), "-m", "scripted/nope")
    result = shared_cli.run("ctl", "board", "--json")
    assert result.returncode == 0, result.stderr
    board = json.loads(result.stdout)
    assert [c["id"] for c in board["columns"]] == ["todo", "doing", "review", "done", "closed"]
    assert all(c["cards"] == [] for c in board["columns"])


def test_board_for_people(shared_cli: CliEnv, shared_process: RealDaemon) -> None:
    result = shared_cli.run("ctl", "board")
    assert result.returncode == 0, result.stderr
    for title in ("To Do (0)", "Doing (0)", "Review (0)", "Done (0)"):
        assert title in result.stdout
    assert "\x1b[" not in result.stdout  # NO_COLOR, and not a terminal


def test_status(shared_cli: CliEnv, shared_process: RealDaemon) -> None:
    result = shared_cli.run("ctl", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["pid"] == shared_process.process.pid
    assert status["socket"] == str(shared_cli.socket)
    assert status["instance"] == shared_cli.env["KILOD_INSTANCE"]
    text = shared_cli.run("ctl", "status")
    assert text.returncode == 0
    assert f"pid            {shared_process.process.pid}" in text.stdout


def test_unknown_ids_fail_with_the_daemons_message(shared_cli: CliEnv, shared_process: RealDaemon) -> None:
    card = shared_cli.run("ctl", "show", "deadbeef")
    assert (card.returncode, card.stderr.strip()) == (1, "kilod: no card 'deadbeef'")
    attempt = shared_cli.run("ctl", "show", "deadbeef-1", "--json")
    assert (attempt.returncode, attempt.stderr.strip()) == (1, "kilod: no attempt 'deadbeef-1'")
    logs = shared_cli.run("ctl", "logs", "deadbeef-1", "-f")
    assert (logs.returncode, logs.stderr.strip()) == (1, "kilod: no attempt 'deadbeef-1'")


def test_doctor_sees_the_daemon(shared_cli: CliEnv, shared_process: RealDaemon) -> None:
    result = shared_cli.run("doctor", "--json")
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    # with the daemon up, its disk use is reported too (env lane's 'disk used' line)
    assert set(checks) == {"docker", "sandbox image", "git", "disk", "daemon", "disk used"}
    assert checks["daemon"]["status"] == "ok"
    assert str(shared_process.process.pid) in checks["daemon"]["detail"]
    # the exit code says whether anything failed (Docker may be missing here: that is a failure)
    assert result.returncode == (0 if report["ok"] else 1)
    assert report["ok"] == all(c["status"] != "fail" for c in report["checks"])


def test_shutdown_stops_the_daemon(cli: CliEnv, real_daemon: RealDaemon) -> None:
    result = cli.run("ctl", "shutdown")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("daemon stopped")
    assert real_daemon.process.wait(timeout=DAEMON_EXIT_SECONDS) == 0
    assert not cli.socket.exists()
    assert cli.run("ctl", "status").returncode == 3
