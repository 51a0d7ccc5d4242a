"""A worktree's content as a git tree, without letting the worktree configure or run anything.

The agent wrote these files, so the host reads them defensively: every path is
opened component by component with O_NOFOLLOW (a symlink is recorded as a symlink,
never followed, so nothing outside the worktree is read), blobs are hashed here
(no clean/smudge filters, no `git add`), and the tree is built in a throwaway index.
The resulting tree is what review shows and exactly what approve commits.
Blocking: call from a thread.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kilod.git.paths import RepoPaths
from kilod.git.runner import run_git

MODE_FILE = "100644"
MODE_EXECUTABLE = "100755"
MODE_SYMLINK = "120000"
MODE_GITLINK = "160000"


@dataclass(frozen=True)
class Snapshot:
    tree: str
    nested_repositories: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    mode: str
    sha: str
    path: str


def _split_z(text: str) -> list[str]:
    return [item for item in text.split("\0") if item]


def _open_parent(root_fd: int, parts: list[str]) -> int | None:
    """An fd of the directory holding `parts[-1]`, or None if any component is not a real directory."""
    fd = os.dup(root_fd)
    for part in parts[:-1]:
        try:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
        fd = next_fd
    return fd


def _read_entry(root_fd: int, path: str) -> tuple[str, bytes] | None:
    """(mode, content) of a worktree path without following any symlink; None if absent."""
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    parent = _open_parent(root_fd, parts)
    if parent is None:
        return None
    name = parts[-1]
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            return MODE_SYMLINK, os.fsencode(os.readlink(name, dir_fd=parent))
        if not stat.S_ISREG(info.st_mode):
            return None
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=parent)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
        return (MODE_EXECUTABLE if info.st_mode & 0o111 else MODE_FILE), data
    except OSError:
        return None
    finally:
        os.close(parent)


def snapshot(repo: RepoPaths, worktree: Path, base_commit: str) -> Snapshot:
    """The worktree's files (untracked, not ignored ones included) as a tree; nested repositories named."""
    git_dir = repo.worktree_git_dir(worktree)
    object_format = run_git("rev-parse", "--show-object-format", git_dir=git_dir).strip() or "sha1"
    hasher = hashlib.sha256 if object_format == "sha256" else hashlib.sha1
    with tempfile.TemporaryDirectory(prefix="kilod-snapshot-") as tmp:
        listing_env = {"GIT_INDEX_FILE": str(Path(tmp) / "listing")}
        run_git("read-tree", base_commit, git_dir=git_dir, env=listing_env)
        staged = run_git("ls-files", "-z", "--stage", git_dir=git_dir, work_tree=worktree, env=listing_env)
        others = run_git("ls-files", "-z", "--others", "--exclude-standard", git_dir=git_dir, work_tree=worktree,
                         cwd=worktree, env=listing_env)

        entries: list[_Entry] = []
        paths: list[str] = []
        for line in _split_z(staged):
            meta, path = line.split("\t", 1)
            mode, sha, _ = meta.split(" ")
            if mode == MODE_GITLINK:  # a submodule is kept as the base had it
                entries.append(_Entry(mode, sha, path))
            else:
                paths.append(path)
        nested = [p.rstrip("/") for p in _split_z(others) if p.endswith("/")]
        paths += [p for p in _split_z(others) if not p.endswith("/")]

        contents: dict[str, bytes] = {}
        root_fd = os.open(worktree, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for path in paths:
                found = _read_entry(root_fd, path)
                if found is None:
                    continue
                mode, data = found
                sha = hasher(b"blob %d\0" % len(data) + data).hexdigest()
                contents[sha] = data
                entries.append(_Entry(mode, sha, path))
        finally:
            os.close(root_fd)

        _store_missing_blobs(git_dir, contents, Path(tmp))
        index_env = {"GIT_INDEX_FILE": str(Path(tmp) / "snapshot")}
        index_info = "".join(f"{e.mode} {e.sha}\t{e.path}\0" for e in entries)
        run_git("update-index", "-z", "--index-info", git_dir=git_dir, env=index_env, stdin=index_info)
        tree = run_git("write-tree", git_dir=git_dir, env=index_env).strip()
    return Snapshot(tree=tree, nested_repositories=sorted(nested))


def _store_missing_blobs(git_dir: Path, contents: dict[str, bytes], scratch: Path) -> None:
    """Write the blobs the repository lacks, from copies outside the worktree, with no filters."""
    if not contents:
        return
    shas = list(contents)
    check = run_git("cat-file", "--batch-check", git_dir=git_dir, stdin="".join(f"{s}\n" for s in shas))
    missing = [line.split(" ", 1)[0] for line in check.splitlines() if line.endswith(" missing")]
    if not missing:
        return
    copies = scratch / "blobs"
    copies.mkdir()
    for sha in missing:
        (copies / sha).write_bytes(contents[sha])
    run_git("hash-object", "-w", "--no-filters", "--stdin-paths", git_dir=git_dir,
            stdin="".join(f"{copies / sha}\n" for sha in missing))

