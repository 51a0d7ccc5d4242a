"""Trust in a repository's own sandbox configuration, by content hash (like direnv's `allow`).

An agent can write `.kilod.toml` and, once its change is merged, that file would set up
the sandbox of every later card of the repository: a network, copies of untracked files
(`.env`, keys), setup commands. The same holds for `.devcontainer/devcontainer.json`
(image, containerEnv, postCreateCommand) and for any Dockerfile either file names (its
RUN lines run in a Docker build). So what a person trusts is that whole set of files:
one sha256 over each file's path and content in a fixed order (`sandbox_files`), and a
change to any of them needs a new trust. Settings that widen a sandbox apply only when
a person trusted that exact set for that repository; until then a card keeps the safe
defaults for them and says so. Keys that cannot widen a sandbox (`checks`, which run
inside the very sandbox the agent already controls) apply without trust. Every key not
named safe needs trust, including keys added later: new keys fail closed.

Settings a person types into a card request (`settings`, `network`) are trusted: they
saw them. A settings file that cannot be read or parsed never blocks a card: the card
uses the safe defaults and carries the error (file, key and line), like an untrusted file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from kilod.environments import devcontainer
from kilod.errors import Conflict, Invalid, KilodError
from kilod.git.repository import Repositories
from kilod.repo_settings import FILE_NAME, RepoSettings, parse
from kilod.store import Store

# keys that cannot widen the sandbox; everything else waits for trust. `fix_rounds` (how
# often failing checks go back to the built-in agent) only spends the card's own budget.
SAFE_KEYS = frozenset({"checks", "fix_rounds"})
# a settings file is a few lines; the agent controls its size, so reading it is bounded
MAX_FILE_BYTES = 256 * 1024


class SettingsSource(TypedDict):
    """What a card made of its repository's settings file (stored with the card, shown in its JSON)."""

    file: str
    exists: bool
    sha256: str | None        # of the whole set of sandbox files (`sandbox_files`), what trust names
    files: list[str]          # that set, relative to the repository: what a person trusts
    trusted: bool
    ignored: list[str]        # keys in the file that were not applied because it is not trusted
    error: str | None         # why the file could not be used at all
    note: str | None          # one sentence for people, None when everything in the file applied


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


def read_settings_file(repo: Path) -> SettingsFile:
    """Read and parse `<repo>/.kilod.toml`; problems land in `.error`, never raise."""
    path = repo / FILE_NAME
    if path.is_symlink():
        return SettingsFile(path, error=f"{path}: is a symbolic link; kilod reads settings only from a regular file")
    if not path.exists():
        return SettingsFile(path)
    if not path.is_file():
        return SettingsFile(path, error=f"{path}: is not a regular file")
    try:
        with path.open("rb") as handle:
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


@dataclass(frozen=True)
class SandboxFiles:
    """The files that configure a repository's sandbox, and one hash over all of them."""

    files: list[SandboxFile]
    sha256: str | None        # None when none of the files exists: nothing to trust

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


def sandbox_files(repo: Path, settings_file: SettingsFile | None = None) -> SandboxFiles:
    """`.kilod.toml`, the devcontainer file, then the Dockerfiles they name (sorted): read, and hashed together.

    The hash covers each path and its content (or its absence) in that order, so renaming,
    adding or changing any of them makes a set nobody trusted yet.
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
    return SandboxFiles(files, combined.hexdigest() if any(f["exists"] for f in files) else None)


def widening_keys(settings: RepoSettings) -> list[str]:
    """Keys the file sets that would widen a sandbox (a network off, empty lists: not widening)."""
    keys = []
    for name, value in settings.model_dump(by_alias=True, exclude_unset=True).items():
        if name in SAFE_KEYS or value in (None, False, [], {}, ""):
            continue
        keys.append(name)
    return keys


def safe_part(settings: RepoSettings) -> RepoSettings:
    """Only the keys that apply without trust."""
    chosen = {k: v for k, v in settings.model_dump(by_alias=True, exclude_unset=True).items() if k in SAFE_KEYS}
    return RepoSettings.model_validate(chosen)


def decide(file: SettingsFile, trusted: bool, repo: str, typed: frozenset[str] = frozenset(),
           files: SandboxFiles | None = None) -> tuple[RepoSettings, SettingsSource]:
    """The settings a new card takes from the file, and the record of why.

    `typed`: keys the person set in the card request; the file's value for those does
    not matter, so they are not reported as ignored. `files`: the set trust is about
    (`sandbox_files`); its hash is what the card records.
    """
    files = files if files is not None else sandbox_files(Path(repo), file)
    source = SettingsSource(file=str(file.path), exists=file.exists, sha256=files.sha256, files=files.paths,
                            trusted=trusted, ignored=[], error=file.error, note=None)
    if file.error is not None:
        source["note"] = f"{file.error}; this card uses the safe defaults (fix the file or pass settings)"
        return RepoSettings(), source
    if file.settings is None:
        return RepoSettings(), source
    widening = [key for key in widening_keys(file.settings) if key not in typed]
    if trusted or not widening:
        return file.settings, source
    source["ignored"] = widening
    source["note"] = (f"{file.path} is not trusted for this repository: "
                      f"{', '.join(widening)} not applied, this card uses the safe defaults for them; "
                      f"{untrusted_advice(files, repo)}")
    return safe_part(file.settings), source


def untrusted_advice(files: SandboxFiles, repo: str) -> str:
    """What to review and trust: every file of the set, and the set's hash."""
    return (f"review {', '.join(files.paths)} (sha256 {str(files.sha256)[:12]} together) and trust them with "
            f"`kilod ctl trust {repo}`")


class TrustRequest(BaseModel):
    """`POST /v1/repos/trust`: the repository, and the hash of the content the person reviewed."""

    model_config = ConfigDict(extra="forbid", strict=True)
    repo: str = Field(min_length=1, description="absolute path of the repository")
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$",
                               description="sha256 of the sandbox files shown by GET /v1/repos/trust "
                                           "(.kilod.toml, devcontainer, Dockerfiles, hashed together)")


class TrustView(TypedDict):
    """`GET /v1/repos/trust`: what trusting would trust, so a person sees it first."""

    repo: str
    file: str                 # .kilod.toml (its content, settings and error below)
    exists: bool              # any file of the set exists
    content: str | None
    sha256: str | None        # of the whole set: what POST must name
    files: list[SandboxFile]  # every file of the set with its content: what a person reviews
    trusted: bool
    widening: list[str]
    settings: dict[str, Any] | None
    error: str | None
    trusted_hashes: list[dict[str, Any]]


class RepoTrust:
    """The trust store's rules; the rows live in the store's `trusted_settings` table."""

    def __init__(self, store: Store, repositories: Repositories) -> None:
        self.store = store
        self.repositories = repositories

    def is_trusted(self, repo: Path, files: SandboxFiles) -> bool:
        # the rows keep `.kilod.toml` as their key; a hash of that file alone (before the set) never matches
        return files.sha256 is not None and self.store.is_trusted(str(repo), FILE_NAME, files.sha256)

    def view(self, repo: Path) -> TrustView:
        file = read_settings_file(repo)
        files = sandbox_files(repo, file)
        return TrustView(
            repo=str(repo), file=str(file.path), exists=files.sha256 is not None, content=file.text,
            sha256=files.sha256, files=files.files, trusted=self.is_trusted(repo, files),
            # a devcontainer widens by being used at all: an image built, its env and setup
            widening=[*(widening_keys(file.settings) if file.settings is not None else []),
                      *([found] if (found := devcontainer.present(repo)) else [])],
            settings=file.settings.to_json() if file.settings is not None else None,
            error=file.error, trusted_hashes=self.store.trusted_hashes(str(repo), FILE_NAME),
        )

    def trust(self, repo: Path, sha256: str | None) -> TrustView:
        """Trust the sandbox files' current content; `sha256` must name that content (the person saw it)."""
        view = self.view(repo)
        if not view["exists"] or view["sha256"] is None:
            raise Conflict(f"{repo} has no {FILE_NAME} and no devcontainer; there is nothing to trust",
                           file=view["file"])
        if sha256 is None:
            raise Invalid("name the sha256 of the content you reviewed (GET /v1/repos/trust shows it)",
                          field="sha256", content=view["content"], current_sha256=view["sha256"])
        if sha256.lower() != view["sha256"]:
            shown = ", ".join(f["path"] for f in view["files"] if f["exists"])
            raise Conflict(f"the sandbox files ({shown}) changed since they were shown (together they are now "
                           f"sha256 {view['sha256']}); review them again",
                           current_sha256=view["sha256"], content=view["content"], files=view["files"])
        self.store.trust_settings(str(repo), FILE_NAME, view["sha256"])
        return self.view(repo)

    def revoke(self, repo: Path) -> TrustView:
        self.store.revoke_trust(str(repo), FILE_NAME)
        return self.view(repo)

    # -- the API's entry points: a repository named by the request's path ----------

    async def view_of(self, repo_text: str) -> TrustView:
        repo = await self.repositories.open(repo_text)
        return await asyncio.to_thread(self.view, repo.path)

    async def trust_of(self, repo_text: str, sha256: str | None) -> TrustView:
        repo = await self.repositories.open(repo_text)
        return await asyncio.to_thread(self.trust, repo.path, sha256)

    async def revoke_of(self, repo_text: str) -> TrustView:
        repo = await self.repositories.open(repo_text)
        return await asyncio.to_thread(self.revoke, repo.path)
