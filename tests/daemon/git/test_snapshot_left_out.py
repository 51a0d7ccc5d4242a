"""What a snapshot cannot or should not hold is left out and named, never silently dropped or read whole."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kilod.git.paths import RepoPaths
from kilod.git.snapshot import snapshot
from tests.kilod_testing import README, git

from .test_snapshot import base, entries, info, worktree  # noqa: F401  (fixtures)

GIB = 1024 ** 3


def objects_bytes(repo: Path) -> int:
    return sum(p.stat().st_size for p in (repo / ".git" / "objects").rglob("*") if p.is_file())


def test_a_fifo_is_named_with_a_note_and_a_tracked_file_turned_fifo_keeps_its_base(
    info: RepoPaths, repo: Path, worktree: Path  # noqa: F811
) -> None:
    os.mkfifo(worktree / "pipe")
    (worktree / "README.md").unlink()
    os.mkfifo(worktree / "README.md")
    (worktree / "kept.txt").write_text("kept\n")

    snap = snapshot(info, worktree, base(repo))   # returns: a FIFO is never opened (it would block)
    left = {item.path: item for item in snap.left_out}
    assert set(left) == {"pipe", "README.md"}
    assert left["pipe"].reason == "unsupported file type" and "FIFO" in left["pipe"].note
    files = entries(repo, snap.tree)
    assert b"pipe" not in files and files[b"kept.txt"][1] == b"kept\n"
    assert files[b"README.md"][1] == README.encode()   # neither its change nor a deletion lands


def test_a_4_gib_sparse_file_is_too_large_and_never_reaches_the_objects(
    info: RepoPaths, repo: Path, worktree: Path  # noqa: F811
) -> None:
    with open(worktree / "huge.img", "wb") as handle:
        handle.truncate(4 * GIB)      # sparse: no disk used, 4 GiB to read
    before = objects_bytes(repo)
    snap = snapshot(info, worktree, base(repo))
    assert [(i.path, i.reason) for i in snap.left_out] == [("huge.img", "too large")]
    assert "file too large: 4.0 GiB" in snap.left_out[0].note and "KILOD_MAX_FILE_BYTES" in snap.left_out[0].note
    assert b"huge.img" not in entries(repo, snap.tree)
    assert objects_bytes(repo) - before < 64 * 1024   # the tree, not a 4 GiB blob


def test_large_files_under_the_limit_are_streamed_and_stored_exactly(
    info: RepoPaths, repo: Path, worktree: Path  # noqa: F811
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    (worktree / "big.bin").write_bytes(data)
    (worktree / "over.bin").write_bytes(b"x" * 5000)
    snap = snapshot(info, worktree, base(repo), max_file_bytes=4 * 1024 * 1024)
    assert snap.left_out == []
    assert entries(repo, snap.tree)[b"big.bin"][1] == data
    expected = subprocess.run(["git", "hash-object", str(worktree / "big.bin")], check=True,
                              capture_output=True, text=True).stdout.strip()
    assert git(repo, "rev-parse", f"{snap.tree}:big.bin").strip() == expected

    small_limit = snapshot(info, worktree, base(repo), max_file_bytes=4000)
    assert sorted(i.path for i in small_limit.left_out) == ["big.bin", "over.bin"]
