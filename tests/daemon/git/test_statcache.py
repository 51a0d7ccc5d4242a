"""Reusing git's index stat data in the snapshot, with real git: untouched files are not read,
and no edit slips through (same size, mtime set back, a file swapped for a link, a racy entry)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from kilod.git.paths import RepoPaths, inspect_repo
from kilod.git.snapshot import snapshot
from kilod.git.statcache import Unchanged, known_files
from kilod.git.worktree import add_worktree
from tests.kilod_testing import git, make_repo

FILES = {f"pkg/mod{i}.py": f"VALUE = {i}\n" for i in range(20)} | {"README.md": "# r\n"}


def setup(tmp_path: Path) -> tuple[RepoPaths, Path, str]:
    repo = make_repo(tmp_path / "repo", FILES)
    info = inspect_repo(str(repo))
    head = git(repo, "rev-parse", "HEAD").strip()
    worktree = tmp_path / "worktrees" / "stat-1"
    add_worktree(info, worktree, "kilod/stat-1", head)
    settle(worktree)
    return info, worktree, head


def settle(worktree: Path) -> None:
    """A checkout this small is written within one clock tick of its index: every entry is racily clean.
    A moment later `git status` re-checks them and rewrites the index, as it would in real use."""
    time.sleep(0.05)
    git(worktree, "status", "--porcelain")


def unchanged_paths(info: RepoPaths, worktree: Path) -> set[str]:
    root = os.open(worktree, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    checker = Unchanged(root, known_files(info.worktree_git_dir(worktree)))
    try:
        return {path for path in FILES if checker.blob(path) is not None}
    finally:
        checker.close()
        os.close(root)


def test_untouched_files_are_known_and_edited_ones_are_not(tmp_path: Path) -> None:
    info, worktree, _ = setup(tmp_path)
    trusted = set(known_files(info.worktree_git_dir(worktree)))  # all but the racily clean (same clock tick)
    assert len(trusted) > len(FILES) // 2
    assert unchanged_paths(info, worktree) == trusted  # right after checkout: nothing to read
    edited = worktree / "pkg" / "mod3.py"
    before = edited.stat()
    edited.write_text("VALUE = 9\n")  # the same size
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old mtime: ctime still moved
    (worktree / "pkg" / "mod4.py").unlink()
    (worktree / "pkg" / "mod4.py").symlink_to("mod5.py")
    assert unchanged_paths(info, worktree) == trusted - {"pkg/mod3.py", "pkg/mod4.py"}


def test_the_snapshot_sees_every_edit_and_reads_no_more(tmp_path: Path) -> None:
    info, worktree, head = setup(tmp_path)
    assert snapshot(info, worktree, head).tree == git(worktree, "rev-parse", f"{head}^{{tree}}").strip()
    edited = worktree / "pkg" / "mod7.py"
    before = edited.stat()
    edited.write_text("VALUE = 8\n")
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    tree = snapshot(info, worktree, head).tree
    assert git(worktree, "cat-file", "blob", f"{tree}:pkg/mod7.py") == "VALUE = 8\n"
    assert git(worktree, "cat-file", "blob", f"{tree}:pkg/mod8.py") == "VALUE = 8\n"


def test_racily_clean_entries_are_read(tmp_path: Path) -> None:
    info, worktree, head = setup(tmp_path)
    index = info.worktree_git_dir(worktree) / "index"
    oldest = min((worktree / path).stat().st_mtime_ns for path in FILES)
    os.utime(index, ns=(oldest, oldest))  # every entry now "changed as the index was written"
    assert known_files(info.worktree_git_dir(worktree)) == {}
    (worktree / "README.md").write_text("# s\n")  # same size; read because nothing is trusted
    tree = snapshot(info, worktree, head).tree
    assert git(worktree, "cat-file", "blob", f"{tree}:README.md") == "# s\n"


def test_a_worktree_handed_to_the_sandbox_user_keeps_git_stat_data_valid(tmp_path: Path) -> None:
    if os.getuid() != 0:  # only a root daemon hands the files over (chown); CI runs as root
        return
    repo = make_repo(tmp_path / "repo", FILES)
    info = inspect_repo(str(repo))
    worktree = tmp_path / "worktrees" / "stat-2"
    add_worktree(info, worktree, "kilod/stat-2", git(repo, "rev-parse", "HEAD").strip(), owner=(1000, 1000))
    assert (worktree / "README.md").stat().st_uid == 1000  # chown moved every ctime; add_worktree refreshed
    trusted = set(known_files(info.worktree_git_dir(worktree)))
    assert len(trusted) > len(FILES) // 2
    assert unchanged_paths(info, worktree) == trusted


def test_an_edit_within_the_second_git_recorded_is_seen(tmp_path: Path) -> None:
    """git (as Debian builds it) compares whole seconds: a same-size edit within the second in which it
    recorded a file and wrote its index looks unchanged to `git diff-files`. Those entries are compared
    here to the nanosecond."""
    info, worktree, head = setup(tmp_path)
    index = info.worktree_git_dir(worktree) / "index"
    target = worktree / "pkg" / "mod5.py"
    for _ in range(50):  # all within one second; a busy machine may need another go
        time.sleep(1 - time.time() % 1 + 0.001)
        target.write_text("VALUE = 5\n")
        git(worktree, "update-index", "-q", "--refresh")   # records the file, writes the index
        recorded = target.stat()
        target.write_text("VALUE = 6\n")                   # the same size
        os.utime(target, ns=(recorded.st_atime_ns, recorded.st_mtime_ns + 1))
        seconds = {recorded.st_ctime_ns // 10**9, target.stat().st_ctime_ns // 10**9,
                   index.stat().st_mtime_ns // 10**9, time.time_ns() // 10**9}
        if len(seconds) == 1:
            break
    else:
        raise AssertionError("could not edit a file within one second 50 times in a row")
    tree = snapshot(info, worktree, head).tree
    assert git(worktree, "cat-file", "blob", f"{tree}:pkg/mod5.py") == "VALUE = 6\n"
