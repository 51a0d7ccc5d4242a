"""Files in an attempt's agent state dir, read and written by the daemon without following links.

The state dir is mounted read-write into the agent's container, so its contents are the
agent's to change. A link it leaves where the daemon reads (its output, its session id)
or writes (config, the session id) must not reach the host's own files: a daemon that
read `/etc/...` or a key file into an event or an argv, or wrote over one, would hand the
agent what the sandbox keeps from it. Each path is walked from the state dir (which the
daemon made, and the agent cannot replace) one component at a time with O_NOFOLLOW.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from kilod.errors import KilodError

READ_LIMIT = 1 << 20   # bytes of a small state file read whole (a session id, a pid, an exit status)


def _parts(relative: str) -> tuple[str, ...]:
    parts = Path(relative).parts
    if not parts or any(part in ("", ".", "..", "/") for part in parts):
        raise KilodError(f"bad path for an agent's state file: {relative!r}")
    return parts


def _walk(root: Path, folders: tuple[str, ...], make: bool, owner: tuple[int, int] | None = None) -> int:
    """A descriptor of root/folders…, each made on the way when `make` (for `owner`)."""
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in folders:
            if make:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=directory)
                    if owner is not None:
                        os.chown(part, *owner, dir_fd=directory, follow_symlinks=False)
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            os.close(directory)
            directory = inner
    except BaseException:
        os.close(directory)
        raise
    return directory


def make_dirs(root: Path, relative: str, owner: tuple[int, int] | None = None) -> None:
    """root/relative and the folders on the way, made (for `owner`) where missing; no link followed."""
    try:
        os.close(_walk(root, _parts(relative), True, owner))
    except OSError as exc:
        raise KilodError(f"cannot make the agent's {relative} in {root}: {exc}") from exc


def open_read(root: Path, relative: str) -> int:
    """A read descriptor of root/relative; OSError (ELOOP, ENOTDIR…) where a link stands in the way."""
    parts = _parts(relative)
    directory = _walk(root, parts[:-1], False)
    try:
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=directory)
    finally:
        os.close(directory)


def read_text(root: Path, relative: str) -> str | None:
    """A small file's text, or None when it is missing, not a plain file, or reached through a link."""
    try:
        handle = open_read(root, relative)
    except OSError:
        return None
    with os.fdopen(handle, "rb") as file:
        return file.read(READ_LIMIT).decode("utf-8", errors="replace")


def write_text(root: Path, relative: str, text: str, owner: tuple[int, int] | None = None) -> None:
    """Write root/relative anew (whatever stood there, a link included, is replaced), for `owner`."""
    parts = _parts(relative)
    try:
        directory = _walk(root, parts[:-1], True, owner)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(parts[-1], dir_fd=directory)
            handle = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                             dir_fd=directory)
            with os.fdopen(handle, "w") as out:
                out.write(text)
            if owner is not None:
                os.chown(parts[-1], *owner, dir_fd=directory, follow_symlinks=False)
        finally:
            os.close(directory)
    except OSError as exc:
        raise KilodError(f"cannot write the agent's {relative} in {root}: {exc}") from exc
