"""A few files of a commit, written out as they are in its tree, and the tree ids of its folders.

What configures a card's sandbox (`.kilod.toml`, the devcontainer, the Dockerfiles they
name) is read from the card's base commit, the same bytes its image is built from, never
from the checkout. `write_out` copies the named paths of a commit into a scratch folder
as git holds them: a blob as a file (at most `limit + 1` bytes, so a reader can tell it is
too large), a symbolic link as a link (readers refuse links), a folder as a folder, and a
path whose folder is a link in the commit not at all. Blocking: call from a thread.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath

from kilod.git.paths import RepoPaths
from kilod.git.runner import SAFE_ENV, TIED_TO_DAEMON, git_command, run

LINK_MODE = "120000"


def _entries(repo: RepoPaths, commit: str, paths: list[str]) -> dict[str, tuple[str, str, str]]:
    """(mode, type, object id) of each of `paths` present in the commit's tree, in one `ls-tree`."""
    if not paths:
        return {}
    found = run("ls-tree", "-z", "--full-tree", commit, "--", *paths, git_dir=repo.common_dir)
    entries = {}
    for line in found.stdout.split("\0"):
        meta, _, name = line.partition("\t")
        if name in paths:
            mode, kind, oid = meta.split(" ")
            entries[name] = (mode, kind, oid)
    return entries


def _is_folder(entry: tuple[str, str, str] | None) -> bool:
    return entry is not None and entry[1] == "tree" and entry[0] != LINK_MODE


def _blob_head(repo: RepoPaths, oid: str, limit: int) -> bytes:
    """The blob's first `limit + 1` bytes (a huge blob is never read whole)."""
    command = TIED_TO_DAEMON + git_command("cat-file", "blob", oid, git_dir=repo.common_dir)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                          env={**os.environ, **SAFE_ENV}) as process:
        assert process.stdout is not None
        data = process.stdout.read(limit + 1)
        process.kill()
    return data


def write_out(repo: RepoPaths, commit: str, paths: list[str], into: Path, limit: int) -> None:
    """Each of `paths` (relative, '/'-separated) of `commit` under `into`, as the commit's tree has it."""
    wanted = [PurePosixPath(p).parts for p in paths if not PurePosixPath(p).is_absolute()]
    wanted = [parts for parts in wanted if parts and not any(p in ("..", "") for p in parts)]
    entries: dict[str, tuple[str, str, str]] = {}
    # one `ls-tree` per depth: given a folder and a path in it at once, git lists the folder only;
    # a depth is asked only below folders the one above found (no .devcontainer: one `ls-tree` in all)
    for depth in range(1, max((len(parts) for parts in wanted), default=0) + 1):
        below = {"/".join(p[:depth]) for p in wanted if len(p) >= depth and
                 (depth == 1 or _is_folder(entries.get("/".join(p[:depth - 1]))))}
        entries.update(_entries(repo, commit, sorted(below)))
    for parts in wanted:
        for depth in range(1, len(parts) + 1):
            target = into.joinpath(*parts[:depth])
            entry = entries.get("/".join(parts[:depth]))
            if entry is None:
                break
            mode, kind, oid = entry
            if mode == LINK_MODE:   # shown to readers as what it is: a link (to nowhere), never followed
                if not target.is_symlink():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink("/nonexistent-link-target", target)
                break
            if kind == "tree":
                target.mkdir(parents=True, exist_ok=True)
                continue
            if kind == "blob" and depth == len(parts) and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(_blob_head(repo, oid, limit))
            break   # a blob on the way, or a submodule: nothing below it


def object_id(repo: RepoPaths, commit: str, path: str) -> str | None:
    """The id of the blob or tree at `path` ('.': the root) in `commit`; None when there is nothing there."""
    clean = path.strip("/")
    spec = f"{commit}^{{tree}}" if clean in ("", ".") else f"{commit}:{clean}"
    found = run("rev-parse", "--verify", "--quiet", "--end-of-options", spec, git_dir=repo.common_dir,
                accept=(0, 1, 128))
    return found.stdout.strip() if found.exit_code == 0 else None
