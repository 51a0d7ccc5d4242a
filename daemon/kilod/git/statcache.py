"""Which worktree files need reading at all: git's own index stat data, reused.

`git worktree add` leaves an index holding, for every file it checked out, the
blob and the file's stat data (ctime, mtime, inode, size, mode). A file whose
lstat still matches is the blob the index names: git's own rule (what `git status`
and `update-index --refresh` rely on), so the snapshot need not read or hash it.
On a 20,000-file worktree where an agent changed ten, that is ten files read
instead of 20,000.

Why this cannot be fooled: the index lives in the repository's git dir, which the
sandbox mounts read-only; a file's ctime is set by the kernel whenever the file
changes and cannot be set back without CAP_SYS_TIME, which the sandbox does not
have. Entries git itself would not trust ("racily clean": modified within the
index's own timestamp) are read as before, and so are entries flagged
assume-unchanged or skip-worktree. Only the stat is taken here, through directory
fds opened with O_NOFOLLOW, never following a link. The index is read as a file
(indexfile.py): printing it as text through git and parsing that cost more than
all the lstats.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from kilod.git.indexfile import Entry, Index, read_index
from kilod.git.runner import run_git

_U32 = 0xFFFFFFFF
_NS = 1_000_000_000
_IFMT, _IFREG = 0o170000, 0o100000
# git's stat comparison as strict as it goes, whatever the repository's config: ctime, uid/gid/inode,
# the executable bit, symlinks as symlinks, no entry assumed unchanged
_STAT_CONFIG = ("core.trustctime=true", "core.checkStat=default", "core.fileMode=true", "core.symlinks=true",
                "core.ignoreStat=false", "core.ignoreCase=false", "core.preloadIndex=true")


def trusted(index: Index, paths: Iterable[str] | None = None) -> dict[str, Entry]:
    """The index's regular files (of `paths`, or all) whose stat data can be trusted, by path.

    Left out: entries git itself would not trust ("racily clean": changed at or after the
    index was written), and entries flagged assume-unchanged, skip-worktree or intent-to-add,
    whose stat data says nothing about the file.
    """
    written = divmod(index.mtime_ns, _NS)
    flagged = index.flagged
    chosen = index.entries.items() if paths is None else ((p, index.get(p)) for p in paths)
    return {path: entry for path, entry in chosen
            if entry is not None and entry.mode & _IFMT == _IFREG and (entry.mtime_s, entry.mtime_ns) < written
            and path not in flagged}


def unsure(index: Index) -> set[str]:
    """Paths whose stat data git cannot vouch for when it compares whole seconds (as Debian's git does).

    An edit in the same second as the one git recorded keeps the seconds of ctime and mtime: only
    entries recorded in or after the second the index was written can be edited so (the sandbox
    starts later), and those are compared here to the nanosecond. Flagged entries are read.
    """
    return set(index.recent()) | set(index.flagged)


def stale_paths(git_dir: Path, worktree: Path, env: dict[str, str]) -> set[str]:
    """Tracked paths whose lstat no longer matches the index named in `env` (GIT_INDEX_FILE), by git.

    git compares stat data only (the index's zero mtime: nothing is racily clean, no file is read),
    ctime included whatever the repository's config says; submodules are not looked into (that
    would run git with the nested repository's own config).
    """
    out = run_git("diff-files", "-z", "--name-only", "--ignore-submodules=all", git_dir=git_dir,
                  work_tree=worktree, cwd=worktree, env=env, config=_STAT_CONFIG)
    return {path for path in out.split("\0") if path}


def known_files(git_dir: Path, hash_size: int = 20) -> dict[str, Entry]:
    """The worktree index's trusted regular files (`trusted`), by path; empty if there is none to read."""
    index = read_index(git_dir / "index", hash_size)
    return {} if index is None else trusted(index)


def _matches(info: os.stat_result, known: Entry) -> bool:
    mode = info.st_mode
    if mode & _IFMT != _IFREG or (0o100755 if mode & 0o111 else 0o100644) != known.mode:
        return False
    ctime, mtime = divmod(info.st_ctime_ns, _NS), divmod(info.st_mtime_ns, _NS)
    if ctime[0] & _U32 != known.ctime_s or mtime[0] & _U32 != known.mtime_s:
        return False
    # a recorded 0: a git built without nanoseconds
    if (known.ctime_ns and ctime[1] != known.ctime_ns) or (known.mtime_ns and mtime[1] != known.mtime_ns):
        return False
    if known.dev and info.st_dev & _U32 != known.dev:
        return False
    return info.st_ino & _U32 == known.ino and info.st_size & _U32 == known.size


class Unchanged:
    """Answers "is this path still the blob git recorded?" with one lstat, directories opened once each."""

    def __init__(self, root_fd: int, known: dict[str, Entry]) -> None:
        self._root = root_fd
        self._known = known
        self._dirs: dict[str, int | None] = {"": root_fd}

    def close(self) -> None:
        for path, fd in self._dirs.items():
            if path and fd is not None:
                os.close(fd)
        self._dirs = {"": self._root}

    def _dir(self, path: str) -> int | None:
        if path in self._dirs:
            return self._dirs[path]
        parent, _, name = path.rpartition("/")
        parent_fd = self._dir(parent)
        fd: int | None = None
        if parent_fd is not None and name not in ("", ".", ".."):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
            except OSError:
                fd = None
        self._dirs[path] = fd
        return fd

    def blob(self, path: str) -> Entry | None:
        """The recorded entry if the file at `path` is unchanged since git wrote it; None: read it."""
        known = self._known.get(path)
        if known is None:
            return None
        parent, _, name = path.rpartition("/")
        if name in ("", ".", ".."):
            return None
        dirs = self._dirs
        fd = dirs[parent] if parent in dirs else self._dir(parent)
        if fd is None:
            return None
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            return None
        return known if _matches(info, known) else None
