"""Trust in a repository's own settings file, by content hash (like direnv's `allow`).

An agent can write `.kilod.toml` and, once its change is merged, that file would set up
the sandbox of every later card of the repository: a network, copies of untracked files
(`.env`, keys), setup commands. So settings that widen a sandbox apply only when a person
trusted that exact content (its sha256) for that repository; until then a card keeps the
safe defaults for them and says so. Keys that cannot widen a sandbox (`checks`, which run
inside the very sandbox the agent already controls) apply without trust. Every key not
named safe needs trust, including keys added later: new keys fail closed.

Settings a person types into a card request (`settings`, `network`) are trusted: they
saw them. A settings file that cannot be read or parsed never blocks a card: the card
uses the safe defaults and carries the error (file, key and line), like an untrusted file.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

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
    sha256: str | None
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


def decide(file: SettingsFile, trusted: bool, repo: str,
           typed: frozenset[str] = frozenset()) -> tuple[RepoSettings, SettingsSource]:
    """The settings a new card takes from the file, and the record of why.

    `typed`: keys the person set in the card request; the file's value for those does
    not matter, so they are not reported as ignored.
    """
    source = SettingsSource(file=str(file.path), exists=file.exists, sha256=file.sha256, trusted=trusted,
                            ignored=[], error=file.error, note=None)
    if file.error is not None:
        source["note"] = f"{file.error}; this card uses the safe defaults (fix the file or pass settings)"
        return RepoSettings(), source
    if file.settings is None:
        return RepoSettings(), source
    widening = [key for key in widening_keys(file.settings) if key not in typed]
    if trusted or not widening:
        return file.settings, source
    source["ignored"] = widening
    source["note"] = (f"{file.path} (sha256 {str(file.sha256)[:12]}) is not trusted for this repository: "
                      f"{', '.join(widening)} not applied, this card uses the safe defaults for them; "
                      f"review the file and trust it with `kilod ctl trust {repo}`")
    return safe_part(file.settings), source


class TrustRequest(BaseModel):
    """`POST /v1/repos/trust`: the repository, and the hash of the content the person reviewed."""

    model_config = ConfigDict(extra="forbid", strict=True)
    repo: str = Field(min_length=1, description="absolute path of the repository")
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$",
                               description="sha256 of the .kilod.toml content shown by GET /v1/repos/trust")


class TrustView(TypedDict):
    """`GET /v1/repos/trust`: what trusting would trust, so a person sees it first."""

    repo: str
    file: str
    exists: bool
    content: str | None
    sha256: str | None
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

    def is_trusted(self, repo: Path, file: SettingsFile) -> bool:
        return file.sha256 is not None and self.store.is_trusted(str(repo), FILE_NAME, file.sha256)

    def view(self, repo: Path) -> TrustView:
        file = read_settings_file(repo)
        return TrustView(
            repo=str(repo), file=str(file.path), exists=file.exists, content=file.text, sha256=file.sha256,
            trusted=self.is_trusted(repo, file),
            widening=widening_keys(file.settings) if file.settings is not None else [],
            settings=file.settings.to_json() if file.settings is not None else None,
            error=file.error, trusted_hashes=self.store.trusted_hashes(str(repo), FILE_NAME),
        )

    def trust(self, repo: Path, sha256: str | None) -> TrustView:
        """Trust the file's current content; `sha256` must name that content (the person saw it)."""
        view = self.view(repo)
        if not view["exists"] or view["sha256"] is None:
            raise Conflict(f"{view['file']} does not exist; there is nothing to trust", file=view["file"])
        if sha256 is None:
            raise Invalid("name the sha256 of the content you reviewed (GET /v1/repos/trust shows it)",
                          field="sha256", content=view["content"], current_sha256=view["sha256"])
        if sha256.lower() != view["sha256"]:
            raise Conflict(f"{view['file']} changed since it was shown (it is now sha256 {view['sha256']}); "
                           "review it again", current_sha256=view["sha256"], content=view["content"])
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
