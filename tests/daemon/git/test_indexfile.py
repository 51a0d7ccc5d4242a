"""Reading git's index file directly, checked against what git itself prints for the same index."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from kilod.git.indexfile import ASSUME_VALID, INTENT_TO_ADD, SKIP_WORKTREE, Entry, read_index
from kilod.git.statcache import trusted
from tests.kilod_testing import git, make_repo

FILES = {"a.txt": "a\n", "dir/b.py": "b = 1\n", "dir/sub/c.sh": "echo c\n", "z.md": "# z\n"}
DEBUG_ENTRY = re.compile(
    rb"(\d{6}) ([0-9a-f]+) (\d)\t([^\0]*)\0  ctime: (\d+):(\d+)\n  mtime: (\d+):(\d+)\n  dev: (\d+)\tino: (\d+)\n"
    rb"  uid: \d+\tgid: \d+\n  size: (\d+)\tflags: [0-9a-f]+\n")


def as_git_prints(repo: Path) -> dict[str, tuple[object, ...]]:
    """Stage-0 entries as `git ls-files --debug` prints them: mode, sha, ctime, mtime, dev, ino, size."""
    out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--stage", "--debug"], check=True,
                         capture_output=True).stdout
    return {path.decode("utf-8", "surrogateescape"): (int(mode, 8), sha.decode(), *map(int, rest))
            for mode, sha, stage, path, *rest in DEBUG_ENTRY.findall(out) if stage == b"0"}


def as_read(entries: dict[str, Entry]) -> dict[str, tuple[object, ...]]:
    return {path: (e.mode, e.sha, e.ctime_s, e.ctime_ns, e.mtime_s, e.mtime_ns, e.dev, e.ino, e.size)
            for path, e in entries.items()}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = make_repo(tmp_path / "repo", FILES)
    os.chmod(path / "dir" / "sub" / "c.sh", 0o755)
    os.symlink("a.txt", path / "link")
    (path / os.fsdecode(b"bad\xffname.txt")).write_text("x\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "more")
    return path


@pytest.mark.parametrize("version", ["2", "3", "4"])
def test_every_version_reads_as_git_prints_it(repo: Path, version: str) -> None:
    git(repo, "update-index", "--index-version", version)
    (repo / "new.txt").write_text("n\n")
    git(repo, "add", "-N", "new.txt")  # intent-to-add: an extended entry in version 3 and 4
    blob = git(repo, "hash-object", "-w", "a.txt").strip()
    long_name = "/".join(["d" * 200] * 25) + "/long.txt"  # over 0xFFF bytes: the flags cannot hold its length
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{long_name}")
    index = read_index(repo / ".git" / "index")
    assert index is not None
    assert as_read(index.entries) == as_git_prints(repo)
    assert long_name in index.entries and len(index) == len(index.entries)
    fresh = read_index(repo / ".git" / "index")  # looked up one by one, before every entry is decoded
    assert fresh is not None
    assert all(fresh.get(path) == entry for path, entry in index.entries.items())
    assert fresh.get("a.tx") is None and fresh.get("zz") is None and "dir" not in fresh
    assert index.flagged == {"new.txt": INTENT_TO_ADD << 16}
    assert index.entries["link"].mode == 0o120000 and not index.entries["link"].regular
    assert index.entries["dir/sub/c.sh"].mode == 0o100755
    assert "bad\udcffname.txt" in index.entries  # the name's bytes, as the git runner decodes them


def test_the_cached_tree_is_the_commit_s_tree_until_an_entry_changes(repo: Path) -> None:
    git(repo, "read-tree", "HEAD")  # primes git's cached tree
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    index = read_index(repo / ".git" / "index")
    assert index is not None and index.cached_tree == tree and index.tree_is(tree)
    (repo / "dir" / "b.py").write_text("b = 2\n")
    git(repo, "add", "dir/b.py")
    index = read_index(repo / ".git" / "index")
    assert index is not None and not index.tree_is(tree)


def test_flags_that_make_stat_data_meaningless_are_kept_and_not_trusted(repo: Path) -> None:
    git(repo, "update-index", "--assume-unchanged", "a.txt")
    git(repo, "update-index", "--skip-worktree", "z.md")
    os.utime(repo / ".git" / "index", ns=(4_000_000_000_000_000_000, 4_000_000_000_000_000_000))  # nothing racy
    index = read_index(repo / ".git" / "index")
    assert index is not None
    assert index.flagged == {"a.txt": ASSUME_VALID, "z.md": SKIP_WORKTREE << 16}
    assert set(trusted(index)) == {"dir/b.py", "dir/sub/c.sh", "bad\udcffname.txt"}


def test_what_it_cannot_read_is_none(repo: Path, tmp_path: Path) -> None:
    index = repo / ".git" / "index"
    raw = index.read_bytes()
    for name, data in (("truncated", raw[:100]), ("flipped", raw[:50] + bytes([raw[50] ^ 1]) + raw[51:]),
                       ("empty", b""), ("not-an-index", b"hello world, not an index at all")):
        (tmp_path / name).write_bytes(data)
        assert read_index(tmp_path / name) is None, name
    assert read_index(tmp_path / "absent") is None
    git(repo, "update-index", "--split-index")  # entries live in a shared file: the slow way
    assert read_index(index) is None
    git(repo, "update-index", "--no-split-index")
    assert read_index(index) is not None
