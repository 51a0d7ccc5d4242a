"""The CLI's parts in-process: SSE parsing, output formats, doctor's checks, the demo's repository."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pytest

from kilod_cli import doctor, images
from kilod_cli.boardtext import age
from kilod_cli.client import Client, SseFrame, read_sse
from kilod_cli.demo import DEMO_FILES, create_sample_repo, ensure_daemon
from kilod_cli.render import diffstat_lines, event_text
from kilod_cli.verbs import ATTEMPT_ID

from .conftest import CliEnv, FakeDaemon

# -- SSE -------------------------------------------------------------------


def lines(text: str) -> list[bytes]:
    return [line.encode() for line in text.splitlines(keepends=True)]


def test_sse_frames_comments_and_multiline_data() -> None:
    stream = (
        ": keep-alive\n\n"
        "id: 1\nevent: state\ndata: {\"a\": 1}\n\n"
        "id: 2\r\nevent: log\r\ndata: line one\r\ndata: line two\r\n\r\n"
        "data:no-space\n\n"
        "id: 3\nevent: cut\ndata: {\"cut\": tru"  # the stream ended mid-frame: dropped
    )
    assert list(read_sse(lines(stream))) == [
        SseFrame("1", "state", '{"a": 1}'),
        SseFrame("2", "log", "line one\nline two"),
        SseFrame(None, "message", "no-space"),
    ]


def test_sse_frame_without_data_is_not_dispatched() -> None:
    assert list(read_sse(lines("id: 7\nevent: state\n\n: keep-alive\n\n"))) == []


# -- output formats ----------------------------------------------------------


@pytest.mark.parametrize(("seconds", "shown"), [
    (-3, "0s"), (0, "0s"), (59.9, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86399, "23h"), (86400, "1d"),
])
def test_age(seconds: float, shown: str) -> None:
    assert age(seconds) == shown


def test_attempt_ids_are_told_from_card_ids() -> None:
    assert ATTEMPT_ID.match("c0ffee01-1")
    assert ATTEMPT_ID.match("c0ffee01-12")
    assert not ATTEMPT_ID.match("c0ffee01")
    assert not ATTEMPT_ID.match("c0ffee01-x")
    assert not ATTEMPT_ID.match("a/b-1")


def test_diffstat_like_git() -> None:
    stat = {
        "files": [
            {"path": "greeter.py", "added": 7, "deleted": 1, "binary": False},
            {"path": "tests/test_greeter.py", "added": 18, "deleted": 0, "binary": False},
            {"path": "logo.png", "added": None, "deleted": None, "binary": True},
        ],
        "added": 25,
        "deleted": 1,
    }
    assert [line.plain for line in diffstat_lines(stat)] == [
        " greeter.py            |  8 +++++++-",
        " tests/test_greeter.py | 18 ++++++++++++++++++",
        " logo.png              | Bin",
        " 3 files changed, 25 insertions(+), 1 deletion(-)",
    ]


def test_diffstat_bars_scale_to_40_columns() -> None:
    stat = {"files": [{"path": "big", "added": 300, "deleted": 100, "binary": False},
                      {"path": "small", "added": 1, "deleted": 0, "binary": False}],
            "added": 301, "deleted": 100}
    big, small, summary = (line.plain for line in diffstat_lines(stat))
    assert big == " big   | 400 " + "+" * 30 + "-" * 10
    assert small == " small |   1 +"
    assert summary == " 2 files changed, 301 insertions(+), 100 deletions(-)"


def test_diffstat_of_nothing() -> None:
    assert [line.plain for line in diffstat_lines({"files": [], "added": 0, "deleted": 0})] == [" (no changes)"]


def test_event_lines() -> None:
    moved = {"time": 0, "kind": "state", "payload": {"from": "running", "to": "failed", "error": "boom"}}
    assert event_text(moved, resting=frozenset({"failed"})).plain.endswith("state       running → FAILED  boom")
    # which states are resting is the daemon's word (GET /v1/meta), not the renderer's
    assert event_text(moved).plain.endswith("state       running → failed  boom")
    call = event_text({"time": 0, "kind": "tool_call",
                       "payload": {"name": "write_file", "arguments": '{"path": "a", "content": "x\\ny"}'}}).plain
    assert call.endswith('tool_call   write_file  {"path": "a", "content": "x\\ny"}')
    cut = event_text({"time": 0, "kind": "tool_call", "payload": {"name": "shell", "arguments": '{"comm'}}).plain
    assert cut.endswith('shell  {"comm')  # arguments cut by the daemon are shown as they are
    error = event_text({"time": 0, "kind": "tool_result",
                        "payload": {"name": "shell", "ok": False, "output": "exit code 2\nnope"}}).plain
    assert error.splitlines()[0].endswith("tool_result shell  error")
    assert [line.strip() for line in error.splitlines()[1:]] == ["exit code 2", "nope"]


# -- doctor ------------------------------------------------------------------


def test_git_versions() -> None:
    assert doctor.parse_git_version("git version 2.47.3") == (2, 47, 3)
    assert doctor.parse_git_version("git version 2.39.3 (Apple Git-146)") == (2, 39, 3)
    assert doctor.parse_git_version("git version 2.25") == (2, 25)
    assert doctor.parse_git_version("what") is None


def test_disk_check_measures_the_nearest_existing_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    measured: list[Path] = []

    def fake_usage(path: Path) -> tuple[int, int, int]:
        measured.append(Path(path))
        return usage(10 * 1024**3, 0, free)

    monkeypatch.setattr(shutil, "disk_usage", fake_usage)
    free = 3 * 1024**3
    check = doctor.check_disk(tmp_path / "not" / "yet")
    assert (check.status, measured[-1]) == ("ok", tmp_path)
    free = 1 * 1024**3
    check = doctor.check_disk(tmp_path)
    assert check.status == "warn"
    assert "KILOD_DATA_DIR" in check.fix
    free = 100 * 1024**2  # below the daemon's floor: it refuses new attempts
    check = doctor.check_disk(tmp_path, floor=256 * 1024**2)
    assert check.status == "fail" and "below the floor" in check.detail and "KILOD_MIN_FREE_BYTES" in check.fix
    assert doctor.min_free_bytes({"disk": {"min_free_bytes": 5}}) == 5
    monkeypatch.setenv("KILOD_MIN_FREE_BYTES", "7")
    assert doctor.min_free_bytes(None) == 7


def test_doctor_talks_to_the_docker_api(cli: CliEnv, fake_daemon: FakeDaemon) -> None:
    """The fake daemon stands in for the Docker engine's API socket here."""
    fake_daemon.schema_checked = False  # Docker's API, not kilod's
    fake_daemon.on("GET", "/_ping", (200, b"OK"))
    fake_daemon.on("GET", "/version", (200, {"Version": "27.1.0", "ApiVersion": "1.46"}))
    fake_daemon.on("GET", "/images/kilod/sandbox/json", (200, {"Id": "sha256:" + "ab" * 32, "Size": 2 * 1024**2}))
    api = doctor.DockerApi(f"unix://{cli.socket}")
    engine, up = doctor.check_docker(api)
    assert (engine.status, up) == ("ok", True)
    assert "engine 27.1.0 (API 1.46)" in engine.detail
    present = doctor.check_image(api, "kilod/sandbox")
    assert (present.status, present.detail) == ("ok", "kilod/sandbox abababababab (2 MiB)")
    missing = doctor.check_image(api, "kilod/other")
    assert (missing.status, missing.fix) == ("fail", "kilod images build")


def test_doctor_without_docker(tmp_path: Path) -> None:
    engine, up = doctor.check_docker(doctor.DockerApi(f"unix://{tmp_path / 'docker.sock'}"))
    assert (engine.status, up) == ("fail", False)
    assert "no Docker socket" in engine.detail


def test_doctor_image_name_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KILOD_SANDBOX_IMAGE", raising=False)
    config = tmp_path / "config.toml"
    monkeypatch.setenv("KILOD_CONFIG", str(config))
    assert doctor.sandbox_image_name(None) == "kilod/sandbox"
    config.write_text('sandbox_image = "from/toml"\n')
    assert doctor.sandbox_image_name(None) == "from/toml"
    monkeypatch.setenv("KILOD_SANDBOX_IMAGE", "from/env")
    assert doctor.sandbox_image_name(None) == "from/env"
    assert doctor.sandbox_image_name({"sandbox_image": "from/daemon"}) == "from/daemon"


def test_doctor_lines() -> None:
    out: list[str] = []
    doctor.print_checks([doctor.Check("git", "ok", "git 2.47.3"),
                         doctor.Check("daemon", "warn", "not running", "start it")], out.append)
    assert "".join(out).splitlines() == [
        "ok    git     git 2.47.3",
        "warn  daemon  not running",
        "              → start it",
    ]


# -- images and demo ---------------------------------------------------------


def test_the_build_script_is_found() -> None:
    script = images.build_script()
    assert script.name == "build.sh" and script.is_file()


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_sample_repository_is_exactly_what_the_demo_scripts_expect(tmp_path: Path) -> None:
    first = create_sample_repo(tmp_path)
    second = create_sample_repo(tmp_path)  # same second: a second directory, not a clash
    assert first != second
    for repo in (first, second):
        assert repo.name.startswith("greeter-")
        assert sorted(p.name for p in repo.iterdir() if p.name != ".git") == ["README.md", "greeter.py"]
        for name, content in DEMO_FILES.items():
            assert (repo / name).read_bytes() == content.encode()
        assert git_out(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
        assert git_out(repo, "log", "--format=%an <%ae>|%cn <%ce>") == (
            "kilod demo <demo@kilod.invalid>|kilod demo <demo@kilod.invalid>")
        assert git_out(repo, "status", "--porcelain") == ""
    assert DEMO_FILES["greeter.py"] == 'def greet(name):\n    return "Hello " + name\n'
    assert DEMO_FILES["README.md"] == "# Greeter\n\n## Usage\n"


@pytest.fixture
def detached_daemon_pids() -> Iterator[list[int]]:
    """Pids of daemons a test started detached (start_new_session), killed afterwards."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        for signum, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if not _alive(pid):
                break


def _alive(pid: int) -> bool:
    try:  # in-process demo code started it, so it may be this process's child: reap the zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_starts_a_detached_daemon_that_logs_to_the_data_dir(
        cli: CliEnv, monkeypatch: pytest.MonkeyPatch, detached_daemon_pids: list[int]) -> None:
    for key, value in cli.env.items():
        if key.startswith("KILOD_"):
            monkeypatch.setenv(key, value)
    client = Client(cli.socket)
    log_path = ensure_daemon(client)
    status = client.get("/v1/status")
    detached_daemon_pids.append(int(status["pid"]))
    assert log_path == cli.data_dir / "kilod.log"
    assert "listening on" in log_path.read_text()
    assert status["socket"] == str(cli.socket)
    assert ensure_daemon(client) is None  # one is running: no second one
    client.post("/v1/shutdown")


def test_images_build_passes_the_scripts_exit_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = tmp_path / "build.sh"
    script.write_text('echo "$@" > "$(dirname "$0")/args"; exit 7\n')
    monkeypatch.setattr(images, "build_script", lambda: script)
    assert images.run_build(["sandbox", "daemon"]) == 7
    assert (tmp_path / "args").read_text() == "sandbox daemon\n"


def test_doctor_json_shape(cli: CliEnv) -> None:
    result = cli.run("doctor", "--json")
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["daemon"]["status"] == "warn"  # not running is not a failure
    assert checks["git"]["status"] == "ok"
    assert result.returncode == (0 if report["ok"] else 1)
