"""DockerSandbox against the real engine: the protocol's every method, on containers labelled for this test."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from kilod.errors import Conflict, NotFound
from kilod.git.paths import inspect_repo
from kilod.git.worktree import add_worktree
from kilod.sandbox.base import LABEL_INSTANCE, ContainerSpec, MountSpec
from kilod.sandbox.docker import DockerSandbox
from tests.kilod_testing import git


@pytest.fixture
def spec(sandbox_image: str, instance: str, repo: Path, tmp_path: Path) -> ContainerSpec:
    info = inspect_repo(str(repo))
    worktree = tmp_path / "worktrees" / f"{instance}-1"
    uid = 1000 if os.getuid() == 0 else os.getuid()  # as the daemon does: never root inside
    add_worktree(info, worktree, f"kilod/{instance}-1", git(repo, "rev-parse", "HEAD").strip(),
                 (uid, uid) if os.getuid() == 0 else None)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "given.txt").write_text("mounted for the agent\n")
    return ContainerSpec(
        name=f"kilod-{instance}-1", image=sandbox_image, attempt_id=f"{instance}-1", card_id=instance,
        instance=instance, uid=uid, gid=uid, worktree=str(worktree), git_pointer=str(worktree / ".git"),
        repo_git_dir=str(info.common_dir), network=False, memory_limit="256m", cpu_limit=0.5, pids_limit=64,
        mounts=(MountSpec(str(extra), "/opt/given"),), env={"KILOD_TEST_SETTING": "on"},
    )


def test_ensure_makes_then_adopts_with_the_spec_applied(spec: ContainerSpec) -> None:
    sandbox = DockerSandbox()
    made = sandbox.ensure(spec)
    assert sandbox.ensure(spec) == made  # adopted, not made twice

    attrs = docker.from_env().containers.get(made).attrs
    assert attrs["HostConfig"]["NetworkMode"] == "none"
    assert "KILOD_TEST_SETTING=on" in attrs["Config"]["Env"]
    given = next(m for m in attrs["Mounts"] if m["Destination"] == "/opt/given")
    assert given["RW"] is False
    # stderr goes to its own descriptor, so touch's complaint is checked alone: the two streams interleave freely
    shown = sandbox.exec(made, "cat /opt/given/given.txt; echo \"$KILOD_TEST_SETTING\"; touch /opt/given/x 2>/dev/null",
                         30)
    assert shown.output.startswith("mounted for the agent\non\n")
    assert shown.exit_code != 0  # the extra mount is read-only
    assert [i.attempt_id for i in sandbox.list_labelled(spec.instance)] == [spec.attempt_id]


def test_files_go_in_and_come_out(spec: ContainerSpec) -> None:
    sandbox = DockerSandbox()
    made = sandbox.ensure(spec)
    sandbox.copy_in(made, "deep/er/notes.txt", b"line one\nline two\n", spec.uid, spec.gid, 0o640)

    assert sandbox.copy_out(made, "/workspace/deep/er/notes.txt", 1024) == (b"line one\nline two\n", False)
    assert sandbox.copy_out(made, "deep/er/notes.txt", 4) == (b"line", True)
    assert sandbox.file_mode(made, "deep/er/notes.txt") == 0o640
    assert sandbox.file_mode(made, "absent.txt") is None
    assert (Path(spec.worktree) / "deep" / "er" / "notes.txt").read_bytes() == b"line one\nline two\n"
    with pytest.raises(NotFound):
        sandbox.copy_out(made, "absent.txt", 10)


def test_exec_reports_exit_codes_and_timeouts(spec: ContainerSpec) -> None:
    sandbox = DockerSandbox()
    made = sandbox.ensure(spec)
    failed = sandbox.exec(made, "echo out; echo err >&2; exit 3", 30)
    assert (failed.exit_code, sorted(failed.output.split())) == (3, ["err", "out"])
    assert sandbox.exec(made, "pwd", 30).output == "/workspace\n"
    assert sandbox.exec(made, "sleep 30", 1).timed_out


def test_stop_keeps_the_container_and_remove_refuses_what_kilod_did_not_label(spec: ContainerSpec) -> None:
    sandbox = DockerSandbox()
    made = sandbox.ensure(spec)
    assert sandbox.stop(spec.name)
    client = docker.from_env()
    assert client.containers.get(made).status == "exited"
    assert sandbox.ensure(spec) == made  # a stopped sandbox starts again, files and all
    assert client.containers.get(made).status == "running"

    stranger = client.containers.create(spec.image, command=["true"], name=f"{spec.name}-stranger",
                                        labels={LABEL_INSTANCE: spec.instance})  # no attempt label
    with pytest.raises(Conflict, match="no kilod label"):
        sandbox.remove(stranger.name or "")
    with pytest.raises(Conflict, match="no kilod label"):
        sandbox.stop(stranger.name or "")

    assert sandbox.remove(spec.name)
    assert not sandbox.remove(spec.name)
    assert not sandbox.stop(spec.name)


def test_exec_hands_output_over_while_the_command_runs(spec: ContainerSpec) -> None:
    sandbox = DockerSandbox()
    made = sandbox.ensure(spec)
    pieces: list[str] = []
    ready = threading.Event()

    def on_output(text: str) -> None:
        pieces.append(text)
        if "ready" in "".join(pieces):
            ready.set()

    command = "echo ready; while [ ! -f /workspace/.go ]; do sleep 0.1; done; echo finished"
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(sandbox.exec, made, command, 120, on_output=on_output)
        # the command cannot end before .go exists: "ready" arriving first proves the output came live
        assert ready.wait(60), pieces
        assert not running.done()
        (Path(spec.worktree) / ".go").write_text("")
        result = running.result(timeout=60)
    assert (result.exit_code, result.timed_out, result.output) == (0, False, "ready\nfinished\n")
    assert "".join(pieces) == result.output


def test_streamed_output_keeps_a_character_split_between_writes(spec: ContainerSpec) -> None:
    sandbox = DockerSandbox()
    made = sandbox.ensure(spec)
    pieces: list[str] = []
    # é is two bytes, written apart: two frames on the stream
    result = sandbox.exec(made, r"printf 'caf\303'; sleep 0.3; printf '\251 ok\n'", 30, on_output=pieces.append)
    assert result.output == "café ok\n" and "".join(pieces) == "café ok\n"
    assert len(pieces) >= 2


def test_a_streaming_exec_that_times_out_is_killed(spec: ContainerSpec) -> None:
    sandbox = DockerSandbox()
    made = sandbox.ensure(spec)
    pieces: list[str] = []
    result = sandbox.exec(made, "echo started; sleep 97; echo never", 1, on_output=pieces.append)
    assert result.timed_out and result.output == "started\n" and pieces == ["started\n"]
    # nothing of it is left running in the container
    processes = sandbox.exec(made, "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '", 30).output
    assert "sleep 97" not in processes, processes
