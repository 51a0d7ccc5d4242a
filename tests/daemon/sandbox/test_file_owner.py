"""write_file/read_file move bytes as the sandbox's user, never as root: permissions inside hold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kilod.errors import Invalid
from kilod.git.paths import inspect_repo
from kilod.git.worktree import add_worktree
from kilod.sandbox.base import ContainerSpec
from kilod.sandbox.docker import DockerSandbox
from tests.kilod_testing import git


@pytest.fixture
def started(sandbox_image: str, instance: str, repo: Path, tmp_path: Path) -> tuple[DockerSandbox, str, int, Path]:
    info = inspect_repo(str(repo))
    worktree = tmp_path / "worktrees" / f"{instance}-1"
    uid = 1000 if os.getuid() == 0 else os.getuid()
    add_worktree(info, worktree, f"kilod/{instance}-1", git(repo, "rev-parse", "HEAD").strip(),
                 (uid, uid) if os.getuid() == 0 else None)
    spec = ContainerSpec(
        name=f"kilod-{instance}-1", image=sandbox_image, attempt_id=f"{instance}-1", card_id=instance,
        instance=instance, uid=uid, gid=uid, worktree=str(worktree), git_pointer=str(worktree / ".git"),
        repo_git_dir=str(info.common_dir), network=False, memory_limit="256m", cpu_limit=0.5, pids_limit=64)
    sandbox = DockerSandbox()
    return sandbox, sandbox.ensure(spec), uid, worktree


def test_written_files_belong_to_the_sandbox_user_and_root_files_cannot_be_planted(
    started: tuple[DockerSandbox, str, int, Path]
) -> None:
    sandbox, container, uid, worktree = started
    sandbox.copy_in(container, "deep/new/notes.txt", b"by the agent\n", uid, uid, 0o640)
    written = worktree / "deep" / "new" / "notes.txt"
    assert written.read_bytes() == b"by the agent\n"
    assert (written.stat().st_uid, written.stat().st_gid, written.stat().st_mode & 0o777) == (uid, uid, 0o640)
    assert (worktree / "deep").stat().st_uid == uid

    for forbidden in ("/etc/planted", "/usr/local/bin/sudo", "/etc/passwd"):
        with pytest.raises(Invalid, match="cannot write"):
            sandbox.copy_in(container, forbidden, b"#!/bin/sh\necho owned\n", uid, uid, 0o755)
    listing = sandbox.exec(container, "ls -A /etc/planted /usr/local/bin/sudo /tmp 2>&1; grep -c owned /etc/passwd",
                           timeout=30)
    assert "No such file" in listing.output and "kilod-in-" not in listing.output  # the stage is gone too
    assert listing.output.strip().endswith("0")


def test_reading_is_done_with_the_sandbox_users_permissions(started: tuple[DockerSandbox, str, int, Path]) -> None:
    sandbox, container, _, worktree = started
    (worktree / "mine.txt").write_text("x" * 100)
    assert sandbox.copy_out(container, "mine.txt", 10) == (b"x" * 10, True)
    assert sandbox.copy_out(container, "/workspace/mine.txt", 1000) == (b"x" * 100, False)
    with pytest.raises(Invalid, match="cannot read"):
        sandbox.copy_out(container, "/etc/shadow", 1000)   # root may read it; the sandbox user may not
    with pytest.raises(Invalid, match="directory"):
        sandbox.copy_out(container, "/workspace", 1000)
