"""A worktree's snapshot with real git: what the agent left, recorded exactly, nothing followed or run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kilod.git.indexfile import read_index
from kilod.git.paths import RepoPaths, inspect_repo
from kilod.git.snapshot import MODE_EXECUTABLE, MODE_FILE, MODE_SYMLINK, snapshot
from kilod.git.statcache import stale_paths
from kilod.git.worktree import add_worktree
from tests.kilod_testing import GREETER, README, git, make_repo

BRANCH = "kilod/snap-1"


@pytest.fixture
def info(repo: Path) -> RepoPaths:
    return inspect_repo(str(repo))


@pytest.fixture
def worktree(info: RepoPaths, repo: Path, tmp_path: Path) -> Path:
    path = tmp_path / "worktrees" / "snap-1"
    add_worktree(info, path, BRANCH, base(repo))
    return path


def base(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def entries(repo: Path, tree: str) -> dict[bytes, tuple[str, bytes]]:
    """path → (mode, content) of every blob in `tree`, names as raw bytes."""
    listing = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "-z", tree], check=True,
                             capture_output=True).stdout
    found: dict[bytes, tuple[str, bytes]] = {}
    for item in filter(None, listing.split(b"\0")):
        meta, path = item.split(b"\t", 1)
        mode, kind, sha = meta.decode().split(" ")
        content = subprocess.run(["git", "-C", str(repo), "cat-file", kind, sha], check=True,
                                 capture_output=True).stdout if kind == "blob" else b""
        found[path] = (mode, content)
    return found


def test_an_untouched_worktree_snapshots_to_the_base_tree(repo: Path, info: RepoPaths, worktree: Path) -> None:
    assert snapshot(info, worktree, base(repo)).tree == git(repo, "rev-parse", "HEAD^{tree}").strip()


def test_symlinks_are_recorded_not_followed(repo: Path, info: RepoPaths, worktree: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "loot.txt").write_text("outside the worktree\n")
    (worktree / "link-to-secret").symlink_to(secret)
    (worktree / "dir-link").symlink_to(outside, target_is_directory=True)
    (worktree / "dangling").symlink_to("/nonexistent/target")

    found = entries(repo, snapshot(info, worktree, base(repo)).tree)

    assert found[b"link-to-secret"] == (MODE_SYMLINK, str(secret).encode())
    assert found[b"dir-link"] == (MODE_SYMLINK, str(outside).encode())
    assert found[b"dangling"] == (MODE_SYMLINK, b"/nonexistent/target")
    assert not any(b"loot" in path for path in found)
    assert not any(b"host secret" in content for _, content in found.values())


def test_a_tracked_file_replaced_by_a_symlink_is_a_symlink(repo: Path, info: RepoPaths, worktree: Path,
                                                           tmp_path: Path) -> None:
    (tmp_path / "elsewhere.py").write_text("print('not the greeter')\n")
    (worktree / "greeter.py").unlink()
    (worktree / "greeter.py").symlink_to(tmp_path / "elsewhere.py")
    found = entries(repo, snapshot(info, worktree, base(repo)).tree)
    assert found[b"greeter.py"] == (MODE_SYMLINK, str(tmp_path / "elsewhere.py").encode())


def test_modes_are_kept(repo: Path, info: RepoPaths, worktree: Path) -> None:
    (worktree / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (worktree / "run.sh").chmod(0o755)
    (worktree / "greeter.py").chmod(0o700)  # user-executable is executable to git
    (worktree / "plain.txt").write_text("plain\n")
    (worktree / "plain.txt").chmod(0o600)

    found = entries(repo, snapshot(info, worktree, base(repo)).tree)

    assert found[b"run.sh"][0] == MODE_EXECUTABLE
    assert found[b"greeter.py"] == (MODE_EXECUTABLE, GREETER.encode())
    assert found[b"plain.txt"][0] == MODE_FILE


def test_odd_names_round_trip(repo: Path, info: RepoPaths, worktree: Path) -> None:
    names = [b"with space.txt", b"-leading-dash", b"new\nline", b"tab\there", b"\xc3\xa9t\xc3\xa9.md",
             b"latin1-caf\xe9.txt", b"quote\"and'both", b"back\\slash", b"deep/er/\xff\xfe.bin"]
    for name in names:
        path = os.path.join(os.fsencode(worktree), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(b"content of " + name)

    snap = snapshot(info, worktree, base(repo))
    found = entries(repo, snap.tree)

    for name in names:
        assert found[name] == (MODE_FILE, b"content of " + name), name
    assert b"greeter.py" in found  # the tracked files are still there
    assert snapshot(info, worktree, base(repo)).tree == snap.tree  # the same content, the same tree


def test_deleted_ignored_and_nested_repositories(repo: Path, tmp_path: Path) -> None:
    source = make_repo(tmp_path / "src", {"keep.txt": "k\n", "gone.txt": "g\n", ".gitignore": "*.log\n"})
    info = inspect_repo(str(source))
    worktree = tmp_path / "worktrees" / "snap-2"
    add_worktree(info, worktree, BRANCH, base(source))
    (worktree / "gone.txt").unlink()
    (worktree / "debug.log").write_text("ignored\n")
    nested = make_repo(worktree / "vendor" / "lib", {"inner.txt": "inside a nested repository\n"})

    snap = snapshot(info, worktree, base(source))
    found = entries(source, snap.tree)

    assert set(found) == {b"keep.txt", b".gitignore"}
    assert snap.nested_repositories == ["vendor/lib"]
    assert (nested / "inner.txt").exists()


def test_snapshot_leaves_the_indexes_alone_and_runs_no_filter(repo: Path, info: RepoPaths, worktree: Path,
                                                               tmp_path: Path) -> None:
    marker = tmp_path / "filter-ran"
    git(repo, "config", "filter.evil.clean", f"touch {marker}")
    (worktree / ".gitattributes").write_text("* filter=evil\n")
    (worktree / "new.txt").write_text("new\n")
    index = info.worktree_git_dir(worktree) / "index"
    before = index.read_bytes()
    user_index = (repo / ".git" / "index").read_bytes()

    found = entries(repo, snapshot(info, worktree, base(repo)).tree)

    assert found[b"new.txt"] == (MODE_FILE, b"new\n")
    assert index.read_bytes() == before
    assert (repo / ".git" / "index").read_bytes() == user_index
    assert not marker.exists()


def test_a_fresh_worktree_s_index_holds_the_base_tree(repo: Path, info: RepoPaths, worktree: Path) -> None:
    """What makes the common case cheap: the snapshot starts from a copy of this index (git's cached tree)."""
    index = read_index(info.worktree_git_dir(worktree) / "index")
    assert index is not None and index.tree_is(git(repo, "rev-parse", "HEAD^{tree}").strip())


def test_files_and_folders_swap_places(tmp_path: Path) -> None:
    source = make_repo(tmp_path / "src", {"a/b.txt": "b\n", "c.txt": "c\n", "e/f/g.txt": "g\n", "keep.txt": "k\n"})
    info = inspect_repo(str(source))
    worktree = tmp_path / "worktrees" / "snap-3"
    add_worktree(info, worktree, BRANCH, base(source))
    shutil.rmtree(worktree / "a")
    (worktree / "a").write_text("a is a file now\n")
    (worktree / "c.txt").unlink()
    (worktree / "c.txt").mkdir()
    (worktree / "c.txt" / "d.txt").write_text("d\n")
    shutil.rmtree(worktree / "e" / "f")
    (worktree / "e" / "f").symlink_to("../keep.txt")

    found = entries(source, snapshot(info, worktree, base(source)).tree)

    assert found == {b"a": (MODE_FILE, b"a is a file now\n"), b"c.txt/d.txt": (MODE_FILE, b"d\n"),
                     b"e/f": (MODE_SYMLINK, b"../keep.txt"), b"keep.txt": (MODE_FILE, b"k\n")}


def test_an_edit_behind_an_assume_unchanged_flag_is_seen(repo: Path, info: RepoPaths, worktree: Path) -> None:
    """A person may flag entries of the worktree's index (or core.ignoreStat flags them all): their stat
    data then says nothing, so the snapshot reads those files."""
    git(worktree, "update-index", "--assume-unchanged", "README.md")
    readme = worktree / "README.md"
    before = readme.stat()
    readme.write_text(README.upper())  # the same size, and the old mtime
    os.utime(readme, ns=(before.st_atime_ns, before.st_mtime_ns))
    found = entries(repo, snapshot(info, worktree, base(repo)).tree)
    assert found[b"README.md"] == (MODE_FILE, README.upper().encode())


def test_the_tree_is_the_same_from_a_moved_index(repo: Path, info: RepoPaths, worktree: Path) -> None:
    """The worktree's index no longer holds the base (a person committed there): the snapshot starts from
    the base's tree instead, and gives the same tree for the same files."""
    (worktree / "new.txt").write_text("n\n")
    (worktree / "greeter.py").write_text("changed\n")
    expected = snapshot(info, worktree, base(repo)).tree
    git(worktree, "add", "new.txt")
    git(worktree, "commit", "-q", "-m", "moved")
    assert snapshot(info, worktree, base(repo)).tree == expected


def test_a_submodule_keeps_its_base_commit_and_git_never_looks_into_it(repo: Path, tmp_path: Path) -> None:
    """A gitlink lands as the base had it; the stat check passes over it (looking in would run git with
    the nested repository's config, which the agent writes)."""
    pinned = "1" * 40
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{pinned},sub")
    git(repo, "commit", "-q", "-m", "a submodule")
    info = inspect_repo(str(repo))
    worktree = tmp_path / "worktrees" / "snap-4"
    add_worktree(info, worktree, BRANCH, base(repo))
    make_repo(worktree / "sub", {"inside.txt": "the agent's own commit\n"})
    env = {"GIT_INDEX_FILE": str(info.worktree_git_dir(worktree) / "index")}

    assert "sub" not in stale_paths(info.worktree_git_dir(worktree), worktree, env)
    snap = snapshot(info, worktree, base(repo))
    assert git(repo, "ls-tree", snap.tree, "sub").split()[:3] == ["160000", "commit", pinned]


def test_the_same_changes_give_the_same_tree_and_new_ones_a_new_tree(repo: Path, info: RepoPaths,
                                                                     worktree: Path) -> None:
    """Asked again, the snapshot gives the tree it wrote for the same changes; any edit is a new answer."""
    (worktree / "new.txt").write_text("one\n")
    first = snapshot(info, worktree, base(repo)).tree
    assert snapshot(info, worktree, base(repo)).tree == first
    (worktree / "new.txt").write_text("two\n")
    second = snapshot(info, worktree, base(repo)).tree
    assert second != first and entries(repo, second)[b"new.txt"] == (MODE_FILE, b"two\n")
    (worktree / "new.txt").unlink()
    assert snapshot(info, worktree, base(repo)).tree == git(repo, "rev-parse", "HEAD^{tree}").strip()


def test_a_sha256_repository(tmp_path: Path) -> None:
    """Object ids of 32 bytes: the index is read with them, blobs hashed with sha256."""
    source = tmp_path / "src256"
    subprocess.run(["git", "init", "-q", "-b", "main", "--object-format=sha256", str(source)], check=True)
    (source / "keep.txt").write_text("k\n")
    (source / "edit.txt").write_text("before\n")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "sha256")
    info = inspect_repo(str(source))
    worktree = tmp_path / "worktrees" / "snap-256"
    add_worktree(info, worktree, BRANCH, base(source))
    index = read_index(info.worktree_git_dir(worktree) / "index", hash_size=32)
    assert index is not None and index.tree_is(git(source, "rev-parse", "HEAD^{tree}").strip())
    (worktree / "edit.txt").write_text("after\n")
    (worktree / "new.txt").write_text("new\n")

    found = entries(source, snapshot(info, worktree, base(source)).tree)

    assert found == {b"keep.txt": (MODE_FILE, b"k\n"), b"edit.txt": (MODE_FILE, b"after\n"),
                     b"new.txt": (MODE_FILE, b"new\n")}
