"""Reading the files trust is about: a repository's settings file, its devcontainer and the Dockerfiles
they name, and what those Dockerfiles copy from their build context; bounded, never through a link.

A card reads them from its base commit (`commit_files` writes them out to a scratch
folder as the commit holds them; `at_commit` reads them there): the very bytes its
image is built from, never the checkout's. The rules about them are kilod.trust's.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from kilod.environments import devcontainer
from kilod.environments.dockerfile import copied_sources
from kilod.errors import KilodError
from kilod.git.commit_files import object_id, write_out
from kilod.git.paths import RepoPaths
from kilod.repo_settings import FILE_NAME, RepoSettings, parse

# a settings file is a few lines; the agent controls its size, so reading it is bounded
MAX_FILE_BYTES = 256 * 1024


@dataclass(frozen=True)
class SettingsFile:
    """A repository's settings file as it is now: its text and hash, parsed or not."""

    path: Path
    text: str | None = None          # None: there is no file
    sha256: str | None = None
    settings: RepoSettings | None = None
    error: str | None = None

    @property
    def exists(self) -> bool:
        return self.text is not None or self.error is not None


def read_settings_file(repo: Path, shown: Path | None = None) -> SettingsFile:
    """Read and parse `<repo>/.kilod.toml`; problems land in `.error`, never raise.

    `shown`: the repository the file is named by in messages, when `repo` is a commit's files written out.
    """
    path = (shown or repo) / FILE_NAME
    real = repo / FILE_NAME
    if real.is_symlink():
        return SettingsFile(path, error=f"{path}: is a symbolic link; kilod reads settings only from a regular file")
    if not real.exists():
        return SettingsFile(path)
    if not real.is_file():
        return SettingsFile(path, error=f"{path}: is not a regular file")
    try:
        with real.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return SettingsFile(path, error=f"{path}: cannot read: {exc.strerror or exc}")
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) > MAX_FILE_BYTES:
        return SettingsFile(path, sha256=digest, error=f"{path}: larger than {MAX_FILE_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace")
    try:
        return SettingsFile(path, text=text, sha256=digest, settings=parse(text, path))
    except KilodError as exc:
        return SettingsFile(path, text=text, sha256=digest, error=exc.message)


class SandboxFile(TypedDict):
    """One file of the set a person trusts, as it is now in the repository's working tree."""

    path: str                 # relative to the repository
    exists: bool
    content: str | None
    sha256: str | None        # of this file alone (the set's hash is `SandboxFiles.sha256`)
    error: str | None


class BuildInput(TypedDict):
    """A file or folder of a build context that a Dockerfile's COPY or ADD puts in the image: trusted too."""

    path: str                 # relative to the repository ('.': all of it)
    id: str | None            # git's object id of it at the commit (None: not there)


@dataclass(frozen=True)
class SandboxFiles:
    """The files that configure a repository's sandbox, and one hash over all of them."""

    files: list[SandboxFile]
    sha256: str | None        # None when none of the files exists: nothing to trust
    inputs: list[BuildInput] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [f["path"] for f in self.files if f["exists"]]


def _read_bounded(repo: Path, relative: str) -> tuple[bytes | None, str | None]:
    """A file's bytes (None: absent) and an error; no symbolic link is followed, on any component."""
    current = repo
    parts = Path(relative).parts
    for index, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"{relative}: cannot read: {exc.strerror or exc}"
        if stat.S_ISLNK(mode):
            return None, f"{relative}: is a symbolic link; kilod reads sandbox files only from regular files"
        if index < len(parts) - 1 and not stat.S_ISDIR(mode):
            return None, None
    if not stat.S_ISREG(mode):
        return None, f"{relative}: is not a regular file"
    try:  # O_NOFOLLOW | O_NONBLOCK: a file swapped for a link or a FIFO since lstat is refused, not waited on
        fd = os.open(current, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"{relative}: cannot read: {exc.strerror or exc}"
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None, f"{relative}: is not a regular file"
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        return raw[:MAX_FILE_BYTES], f"{relative}: larger than {MAX_FILE_BYTES} bytes"
    return raw, None


def _named_dockerfiles(repo: Path, settings: RepoSettings | None, found_devcontainer: bool) -> list[str]:
    """Dockerfiles `.kilod.toml` and the devcontainer name (a devcontainer that cannot be read names none)."""
    named = [settings.dockerfile] if settings is not None and settings.dockerfile else []
    if found_devcontainer:
        try:
            read = devcontainer.read(repo)
        except KilodError:
            read = None
        if read is not None and read[0].get("dockerfile"):
            named.append(str(read[0]["dockerfile"]))
    return sorted(set(named))


def sandbox_files(repo: Path, settings_file: SettingsFile | None = None,
                  inputs: list[BuildInput] | None = None) -> SandboxFiles:
    """`.kilod.toml`, the devcontainer file, then the Dockerfiles they name (sorted): read, and hashed together.

    The hash covers each path and its content (or its absence) in that order, so renaming,
    adding or changing any of them makes a set nobody trusted yet; then each build input's
    path and object id (`inputs`, from `at_commit`: what the Dockerfiles COPY or ADD from
    their context), so does a change to a file that reaches the image.
    """
    settings_file = settings_file if settings_file is not None else read_settings_file(repo)
    found = devcontainer.present(repo)
    paths = [FILE_NAME, *([found] if found else []),
             *_named_dockerfiles(repo, settings_file.settings, found is not None)]
    files: list[SandboxFile] = []
    combined = hashlib.sha256(b"kilod-sandbox-files-v1\0")
    for relative in dict.fromkeys(paths):
        raw, error = _read_bounded(repo, relative)
        exists = raw is not None or error is not None
        files.append(SandboxFile(path=relative, exists=exists,
                                 content=raw.decode("utf-8", errors="replace") if raw is not None else None,
                                 sha256=hashlib.sha256(raw).hexdigest() if raw is not None else None,
                                 error=error))
        combined.update(relative.encode("utf-8", errors="surrogateescape") + b"\0")
        if raw is None:
            combined.update(b"absent\0" if error is None else b"unreadable\0")
        else:
            combined.update(b"%d\0" % len(raw) + raw)
    for item in inputs or []:
        combined.update(b"input\0" + item["path"].encode("utf-8", errors="surrogateescape") + b"\0"
                        + (item["id"] or "absent").encode() + b"\0")
    return SandboxFiles(files, combined.hexdigest() if any(f["exists"] for f in files) else None,
                        list(inputs or []))


def build_inputs(files_root: Path, settings: RepoSettings | None) -> list[str]:
    """What the Dockerfiles `.kilod.toml` and the devcontainer name copy from their build contexts
    (relative to the repository), read from the files written out under `files_root`."""
    recipes: list[tuple[str, str]] = []
    if settings is not None and settings.dockerfile:
        recipes.append((settings.dockerfile, settings.context or posixpath.dirname(settings.dockerfile) or "."))
    if devcontainer.present(files_root):
        try:
            read = devcontainer.read(files_root)
        except KilodError:
            read = None
        if read is not None and read[0].get("dockerfile"):
            named = str(read[0]["dockerfile"])
            recipes.append((named, str(read[0].get("context") or posixpath.dirname(named) or ".")))
    found: set[str] = set()
    for dockerfile, context in recipes:
        raw, error = _read_bounded(files_root, dockerfile)
        sources = copied_sources(raw.decode("utf-8", errors="replace")) if raw is not None and not error else ["."]
        found.update(posixpath.normpath(posixpath.join(context, source)) for source in sources)
    return sorted(found)


def write_out_sandbox_files(repo: RepoPaths, commit: str, into: Path) -> None:
    """The commit's sandbox files (settings, devcontainer, the Dockerfiles they name) under `into`, as committed."""
    write_out(repo, commit, [FILE_NAME, *devcontainer.CANDIDATES], into, MAX_FILE_BYTES)
    named = _named_dockerfiles(into, read_settings_file(into).settings, devcontainer.present(into) is not None)
    write_out(repo, commit, named, into, MAX_FILE_BYTES)


def at_commit(repo: RepoPaths, commit: str, files_root: Path) -> tuple[SettingsFile, SandboxFiles]:
    """The settings file and the trusted set of `commit`, whose files `write_out_sandbox_files` put in `files_root`:
    the very bytes (and build contexts) its image is built from."""
    file = read_settings_file(files_root, shown=repo.path)
    inputs = [BuildInput(path=p, id=object_id(repo, commit, p)) for p in build_inputs(files_root, file.settings)]
    return file, sandbox_files(files_root, file, inputs)


@contextmanager
def commit_files(repo: RepoPaths, commit: str) -> Iterator[Path]:
    """A scratch folder holding the commit's sandbox files while the block runs."""
    with tempfile.TemporaryDirectory(prefix="kilod-sandbox-files-") as scratch:
        root = Path(scratch)
        write_out_sandbox_files(repo, commit, root)
        yield root
