"""A worktree's content as a git tree, without letting the worktree configure or run anything.

The agent wrote these files, so the host reads them defensively: every path is
opened component by component with O_NOFOLLOW (a symlink is recorded as a symlink,
never followed, so nothing outside the worktree is read), blobs are hashed here
(no clean/smudge filters, no `git add`), and the tree is built in a throwaway index.
Files whose stat data still matches what git recorded at checkout are not read at
all (statcache.py: git's own rule, on an index the agent cannot write).
The resulting tree is what review shows and exactly what approve commits.
Blocking: call from a thread.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kilod.git.indexfile import Entry as IndexEntry
from kilod.git.indexfile import Index, read_index
from kilod.git.memo import Memo
from kilod.git.paths import RepoPaths
from kilod.git.runner import GitFailed, run, run_git
from kilod.git.statcache import Unchanged, stale_paths, trusted, unsure

MODE_FILE = "100644"
MODE_EXECUTABLE = "100755"
MODE_SYMLINK = "120000"
MODE_GITLINK = "160000"
GITLINK = 0o160000


# Files up to this size are read into memory; larger ones are streamed through a scratch copy.
IN_MEMORY_BYTES = 1024 * 1024
CHUNK = 1024 * 1024
# What a repository takes by default: GitHub refuses files over 100 MiB.
DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class LeftOut:
    """A worktree path the snapshot could not or would not hold; it lands as the base had it."""

    path: str
    reason: str           # "too large", "unsupported file type"
    note: str             # the same, for people, with the size or the kind


@dataclass(frozen=True)
class Snapshot:
    tree: str
    nested_repositories: list[str] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)


@dataclass(frozen=True)
class _Blob:
    """A file's content: in memory, or in a scratch copy outside the worktree."""

    data: bytes | None = None
    copy: Path | None = None


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


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def _read_entry(root_fd: int, path: str, max_bytes: int, scratch: Path,
                hasher: Callable[[], Any]) -> tuple[str, str, _Blob] | LeftOut | None:
    """(mode, sha, content) of a worktree path without following any symlink; LeftOut; None if absent."""
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
            target = os.fsencode(os.readlink(name, dir_fd=parent))
            return MODE_SYMLINK, _digest(hasher, target), _Blob(data=target)
        if stat.S_ISDIR(info.st_mode):
            return None
        if not stat.S_ISREG(info.st_mode):  # opening a FIFO would block; a device is no content
            return LeftOut(path, "unsupported file type",
                           f"{_kind(info.st_mode)}: git cannot hold it, so it is not part of what lands")
        if info.st_size > max_bytes:  # never read: a 4 GiB sparse file costs nothing
            return LeftOut(path, "too large", f"file too large: {_size(info.st_size)}, over the "
                           f"{_size(max_bytes)} limit (KILOD_MAX_FILE_BYTES); it is not part of what lands")
        mode = MODE_EXECUTABLE if info.st_mode & 0o111 else MODE_FILE
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
        with os.fdopen(fd, "rb") as handle:
            if info.st_size <= IN_MEMORY_BYTES:
                data = handle.read(max_bytes + 1)
                blob = _Blob(data=data)
                sha = _digest(hasher, data) if len(data) <= max_bytes else ""
            else:
                blob, sha = _stream(handle, max_bytes, scratch, hasher)
        if sha == "":
            return LeftOut(path, "too large", f"file too large: it grew over the {_size(max_bytes)} limit while "
                           "it was read; it is not part of what lands")
        return mode, sha, blob
    except OSError:
        return None
    finally:
        os.close(parent)


def _digest(hasher: Callable[[], Any], data: bytes) -> str:
    h = hasher()
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return str(h.hexdigest())


def _stream(handle: Any, max_bytes: int, scratch: Path, hasher: Callable[[], Any]) -> tuple[_Blob, str]:
    """Copy a large file out of the worktree in chunks, then hash the copy (which cannot change)."""
    fd, name = tempfile.mkstemp(dir=scratch, prefix="large-")
    copied = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := handle.read(CHUNK):
            copied += len(chunk)
            if copied > max_bytes:
                return _Blob(), ""
            out.write(chunk)
    h = hasher()
    h.update(b"blob %d\0" % copied)
    with open(name, "rb") as copy:
        while chunk := copy.read(CHUNK):
            h.update(chunk)
    return _Blob(copy=Path(name)), str(h.hexdigest())


def snapshot(repo: RepoPaths, worktree: Path, base_commit: str,
             max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Snapshot:
    """The worktree's files (untracked, not ignored ones included) as a tree; nested repositories named.

    A path the tree cannot hold (a FIFO, a device) or should not (over `max_file_bytes`)
    is left out and named: it lands as the base had it (absent, or the base's content).

    The tree is built in a private index that starts as the base commit's tree and takes
    only what differs: a file whose stat data still matches the worktree's index is that
    entry's blob and is neither read nor written again (statcache.py). When the worktree's
    index holds exactly the base tree (git's cached tree says so), the private index is a
    copy of it, and `write-tree` reuses every cached subtree the changes did not touch.
    """
    git_dir = repo.worktree_git_dir(worktree)
    hasher = hashlib.sha256 if _object_format(repo.common_dir) == "sha256" else hashlib.sha1
    with tempfile.TemporaryDirectory(prefix="kilod-snapshot-") as tmp:
        scratch = Path(tmp)
        private = scratch / "index"
        env = {"GIT_INDEX_FILE": str(private)}
        worktree_index = read_index(git_dir / "index", hasher().digest_size)
        base_tree = _tree_of(repo.common_dir, base_commit)
        if worktree_index is not None and worktree_index.tree_is(base_tree):
            private.write_bytes(worktree_index.raw)
            base = worktree_index
        else:  # moved since checkout (or unreadable): start from the base's tree, without stat data
            run_git("read-tree", base_commit, git_dir=git_dir, env=env)
            found = read_index(private, hasher().digest_size)
            if found is None:
                raise GitFailed(128, f"cannot read the index git wrote for {base_commit}", ("read-tree",))
            base = found
        # a zero mtime: git never takes this index's entries for racily clean, so it never reads a worktree file
        os.utime(private, ns=(0, 0))
        # git walks the worktree (three ways) on the other core while this thread does its part; the threads
        # outlive their git processes, so a git tied to its thread (runner.TIED_TO_DAEMON) is never killed early
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="snapshot") as pool:
            listing = pool.submit(run_git, "ls-files", "-z", "--others", "--exclude-standard", git_dir=git_dir,
                                  work_tree=worktree, cwd=worktree, env=env)
            non_files = pool.submit(_non_files, worktree)
            if base is worktree_index and worktree_index is not None:
                # the worktree's index is the base: git names the files whose stat data moved
                stale = pool.submit(stale_paths, git_dir, worktree, env)
                look_at = sorted(stale.result() | unsure(worktree_index))
                known = trusted(worktree_index, look_at)
            else:
                look_at = list(base.entries)
                known = {} if worktree_index is None else trusted(worktree_index)
            others = _split_z(listing.result())
            found_non_files = non_files.result()
        nested = [p.rstrip("/") for p in others if p.endswith("/")]
        untracked = [p for p in others if not p.endswith("/")]
        untracked += _special_files(git_dir, worktree, found_non_files, nested, set(untracked), base)
        changes = _Changes(base, max_file_bytes, scratch, hasher)
        root_fd = os.open(worktree, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        unchanged = Unchanged(root_fd, known)  # what git checked out and nobody touched since
        try:
            for path in look_at:
                entry = base.get(path)
                if entry is None or entry.mode == GITLINK:  # a submodule is kept as the base had it
                    continue
                recorded = unchanged.blob(path)
                if recorded is not None and recorded.size <= max_file_bytes:
                    changes.recorded(path, recorded)
                else:
                    changes.read(root_fd, path)
            for path in untracked:
                changes.read(root_fd, path)
        finally:
            unchanged.close()
            os.close(root_fd)

        tree = _write_tree(repo, git_dir, scratch, env, base_tree, changes)
    return Snapshot(tree=tree, nested_repositories=sorted(nested), left_out=changes.left_out)


class _Changes:
    """What differs from the base, as `update-index --index-info` lines, and what was left out."""

    def __init__(self, base: Index, max_bytes: int, scratch: Path,
                 hasher: Callable[[], Any]) -> None:
        self.base = base
        self.max_bytes = max_bytes
        self.scratch = scratch
        self.hasher = hasher
        self.index_info: list[str] = []
        self.contents: dict[str, _Blob] = {}
        self.left_out: list[LeftOut] = []

    def _put(self, path: str, mode: int, sha: str) -> bool:
        """Record `path` as (mode, sha); False if the base has exactly that already."""
        was = self.base.get(path)
        if was is not None and was.mode == mode and was.sha == sha:
            return False
        self.index_info.append(f"{mode:o} {sha}\t{path}\0")
        return True

    def recorded(self, path: str, entry: IndexEntry) -> None:
        was = self.base.get(path)
        if was is entry or (was is not None and was.oid == entry.oid and was.mode == entry.mode):
            return  # the common case: the worktree's index is the base, and this file is untouched
        self._put(path, entry.mode, entry.sha)

    def read(self, root_fd: int, path: str) -> None:
        found = _read_entry(root_fd, path, self.max_bytes, self.scratch, self.hasher)
        if isinstance(found, LeftOut):
            self.left_out.append(found)  # neither its change nor a deletion lands: the base's entry stays
        elif found is None:
            was = self.base.get(path)
            if was is not None:  # gone (or no longer a file git can hold): deleted
                self.index_info.append(f"0 {'0' * len(was.sha)}\t{path}\0")
        else:
            mode, sha, blob = found
            if self._put(path, int(mode, 8), sha):
                self.contents[sha] = blob


# (repository, base tree, the changes written over it) → the tree git wrote for them (memo.py: why an hour)
_TREES: Memo[tuple[str, str, str], str] = Memo(entries=256, seconds=3600)


def _write_tree(repo: RepoPaths, git_dir: Path, scratch: Path, env: dict[str, str], base_tree: str,
                changes: _Changes) -> str:
    """The private index's tree: the base's own when nothing differs, the one written last time for the
    same changes, or a new one (its blobs stored while the index takes their names: they need not wait)."""
    if not changes.index_info:
        return base_tree
    info = "".join(changes.index_info)
    key = (str(repo.common_dir), base_tree, hashlib.sha256(info.encode("utf-8", "surrogateescape")).hexdigest())
    known = _TREES.get(key)
    if known is not None:
        return known
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot") as pool:
        storing = pool.submit(_store_missing_blobs, git_dir, changes.contents, scratch)
        run_git("update-index", "-z", "--index-info", git_dir=git_dir, cwd=scratch, env=env, stdin=info)
        storing.result()
    tree = run_git("write-tree", git_dir=git_dir, cwd=scratch, env=env).strip()
    _TREES.put(key, tree)
    return tree


@functools.lru_cache(maxsize=64)
def _object_format(common_dir: Path) -> str:
    """sha1 or sha256: fixed when a repository is made, so asked once per repository."""
    return run_git("rev-parse", "--show-object-format", git_dir=common_dir).strip() or "sha1"


@functools.lru_cache(maxsize=1024)
def _tree_of(common_dir: Path, commit: str) -> str:
    """A commit's root tree (a commit never changes; its id names it)."""
    return run_git("rev-parse", "--verify", "--end-of-options", f"{commit}^{{tree}}", git_dir=common_dir).strip()


def _non_files(worktree: Path) -> list[str]:
    """Every FIFO, socket and device below the worktree (git's listings skip them), its .git aside."""
    found = subprocess.run(["find", ".", "-path", "./.git", "-prune", "-o", "!", "-type", "f", "!", "-type", "d",
                            "!", "-type", "l", "-print0"], cwd=worktree, capture_output=True, check=False).stdout
    return [os.fsdecode(item)[2:] for item in found.split(b"\0") if item.startswith(b"./")]


def _special_files(git_dir: Path, worktree: Path, found: list[str], nested: list[str], listed: set[str],
                   tracked: Index) -> list[str]:
    """Untracked FIFOs, sockets and devices, not ignored, outside nested repositories."""
    candidates = [c for c in found
                  if c not in listed and c not in tracked and not any(c.startswith(f"{n}/") for n in nested)]
    if not candidates:
        return []
    ignored = run("check-ignore", "-z", "--stdin", git_dir=git_dir, work_tree=worktree, cwd=worktree,
                  stdin="".join(f"{c}\0" for c in candidates), accept=(0, 1)).stdout
    return sorted(set(candidates) - set(_split_z(ignored)))


def _store_missing_blobs(git_dir: Path, contents: dict[str, _Blob], scratch: Path) -> None:
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
    sources = []
    for sha in missing:
        blob = contents[sha]
        if blob.copy is None:
            (copies / sha).write_bytes(blob.data or b"")
            sources.append(copies / sha)
        else:
            sources.append(blob.copy)
    run_git("hash-object", "-w", "--no-filters", "--stdin-paths", git_dir=git_dir,
            stdin="".join(f"{source}\n" for source in sources))
