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
index's own timestamp) are read as before. Only the stat is taken here, through
directory fds opened with O_NOFOLLOW, never following a link.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from kilod.git.runner import run

# One entry of `git ls-files -z --debug --stage`: the stage line (NUL-terminated path), then its stat data.
# Regular files at stage 0 only; names as the runner decodes them (the same keys as the snapshot's listing).
_ENTRY = re.compile(
    r"(100644|100755) ([0-9a-f]+) 0\t([^\0]*)\0"
    r"  ctime: (\d+):(\d+)\n  mtime: (\d+):(\d+)\n  dev: (\d+)\tino: (\d+)\n"
    r"  uid: \d+\tgid: \d+\n  size: (\d+)\tflags: [0-9a-f]+\n"
)
_U32 = 0xFFFFFFFF
MODE_FILE = "100644"
MODE_EXECUTABLE = "100755"


@dataclass(frozen=True)
class Known:
    """What git recorded for a path when it last wrote it."""

    mode: str
    sha: str
    ctime: tuple[int, int]
    mtime: tuple[int, int]
    dev: int
    ino: int
    size: int


def known_files(git_dir: Path) -> dict[str, Known]:
    """The worktree index's regular files whose stat data can be trusted (not racily clean), by path."""
    index = git_dir / "index"
    try:
        written = os.stat(index).st_mtime_ns
    except OSError:
        return {}
    listing = run("ls-files", "-z", "--debug", "--stage", git_dir=git_dir, accept=(0, 128))
    if listing.exit_code != 0:
        return {}
    found: dict[str, Known] = {}
    for mode, sha, path, cs, cn, ms, mn, dev, ino, size in _ENTRY.findall(listing.stdout):
        mtime = (int(ms), int(mn))
        if mtime[0] * 1_000_000_000 + mtime[1] >= written:  # racily clean: git would look at the content
            continue
        found[path] = Known(mode, sha, (int(cs), int(cn)), mtime, int(dev), int(ino), int(size))
    return found


def _matches(info: os.stat_result, known: Known) -> bool:
    if not stat.S_ISREG(info.st_mode):
        return False
    if (MODE_EXECUTABLE if info.st_mode & 0o111 else MODE_FILE) != known.mode:
        return False
    for seconds_ns, (seconds, nanos) in ((info.st_ctime_ns, known.ctime), (info.st_mtime_ns, known.mtime)):
        if (seconds_ns // 1_000_000_000) & _U32 != seconds:
            return False
        if nanos and seconds_ns % 1_000_000_000 != nanos:  # 0: a git built without nanoseconds
            return False
    if known.dev and info.st_dev & _U32 != known.dev:
        return False
    return info.st_ino & _U32 == known.ino and info.st_size & _U32 == known.size


class Unchanged:
    """Answers "is this path still the blob git recorded?" with one lstat, directories opened once each."""

    def __init__(self, root_fd: int, known: dict[str, Known]) -> None:
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

    def blob(self, path: str) -> Known | None:
        """The recorded entry if the file at `path` is unchanged since git wrote it; None: read it."""
        known = self._known.get(path)
        if known is None:
            return None
        parent, _, name = path.rpartition("/")
        if name in ("", ".", ".."):
            return None
        fd = self._dir(parent)
        if fd is None:
            return None
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            return None
        return known if _matches(info, known) else None
