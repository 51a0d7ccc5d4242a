"""Trust in a repository's own sandbox configuration, by content hash (like direnv's `allow`).

An agent can write `.kilod.toml` and, once its change is merged, that file would set up
the sandbox of every later card of the repository: a network, copies of untracked files
(`.env`, keys), setup commands. The same holds for `.devcontainer/devcontainer.json`
(image, containerEnv, postCreateCommand) and for any Dockerfile either file names (its
RUN lines run in a Docker build), and for what those Dockerfiles COPY or ADD from their
build context. So what a person trusts is that whole set, as committed at the card's base
(the bytes its image is built from; kilod.trust_files reads them): one sha256 over each
file's path and content in a fixed order, then each copied path's git object id
(`sandbox_files`), and a change to any of them needs a new trust. Settings that widen a sandbox apply only when
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
from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from kilod.environments import devcontainer
from kilod.errors import Conflict, Invalid
from kilod.git.paths import RepoPaths, inspect_repo
from kilod.git.refs import resolve_base
from kilod.git.repository import Repositories
from kilod.repo_settings import FILE_NAME, RepoSettings
from kilod.store import Store
from kilod.trust_files import BuildInput, SandboxFile, SandboxFiles, SettingsFile, at_commit, commit_files
from kilod.trust_files import read_settings_file as read_settings_file  # re-exported: the files' reader
from kilod.trust_files import sandbox_files as sandbox_files

# keys that cannot widen the sandbox; everything else waits for trust. `fix_rounds` (how
# often failing checks go back to the built-in agent) only spends the card's own budget.
SAFE_KEYS = frozenset({"checks", "fix_rounds"})


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
                                           "(.kilod.toml, devcontainer, Dockerfiles, build contexts, hashed "
                                           "together)")
    base: str = Field("HEAD", min_length=1, max_length=255,
                      description="the commit (or branch) whose files were shown; a card's base is read the same way")


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
    base: str                 # the commit read (the request's `base`, default HEAD)
    inputs: list[BuildInput]  # what the Dockerfiles COPY/ADD from their contexts, by object id: in the hash too


class RepoTrust:
    """The trust store's rules; the rows live in the store's `trusted_settings` table."""

    def __init__(self, store: Store, repositories: Repositories) -> None:
        self.store = store
        self.repositories = repositories

    def is_trusted(self, repo: Path, files: SandboxFiles) -> bool:
        # the rows keep `.kilod.toml` as their key; a hash of that file alone (before the set) never matches
        return files.sha256 is not None and self.store.is_trusted(str(repo), FILE_NAME, files.sha256)

    def view(self, repo: Path | RepoPaths, base: str = "HEAD") -> TrustView:
        """The sandbox files of `base` (a new card's default: HEAD), as committed: what its image is built from."""
        paths = repo if isinstance(repo, RepoPaths) else inspect_repo(str(repo))
        commit = resolve_base(paths, base)
        with commit_files(paths, commit) as root:
            file, files = at_commit(paths, commit, root)
            found = devcontainer.present(root)
        return TrustView(
            repo=str(paths.path), file=str(file.path), exists=files.sha256 is not None, content=file.text,
            sha256=files.sha256, files=files.files, trusted=self.is_trusted(paths.path, files),
            # a devcontainer widens by being used at all: an image built, its env and setup
            widening=[*(widening_keys(file.settings) if file.settings is not None else []),
                      *([found] if found else [])],
            settings=file.settings.to_json() if file.settings is not None else None,
            error=file.error, trusted_hashes=self.store.trusted_hashes(str(paths.path), FILE_NAME),
            base=commit, inputs=files.inputs,
        )

    def trust(self, repo: Path | RepoPaths, sha256: str | None, base: str = "HEAD") -> TrustView:
        """Trust the sandbox files' content at `base`; `sha256` must name that content (the person saw it)."""
        view = self.view(repo, base)
        if not view["exists"] or view["sha256"] is None:
            raise Conflict(f"{view['repo']} has no {FILE_NAME} and no devcontainer at {base}; there is nothing "
                           "to trust (kilod reads them from commits: commit them first)", file=view["file"])
        if sha256 is None:
            raise Invalid("name the sha256 of the content you reviewed (GET /v1/repos/trust shows it)",
                          field="sha256", content=view["content"], current_sha256=view["sha256"])
        if sha256.lower() != view["sha256"]:
            shown = ", ".join(f["path"] for f in view["files"] if f["exists"])
            raise Conflict(f"the sandbox files ({shown}) changed since they were shown (together, with what their "
                           f"Dockerfiles copy, they are now sha256 {view['sha256']} at {base}); review them again",
                           current_sha256=view["sha256"], content=view["content"], files=view["files"])
        self.store.trust_settings(view["repo"], FILE_NAME, view["sha256"])
        return self.view(repo, base)

    def revoke(self, repo: Path | RepoPaths, base: str = "HEAD") -> TrustView:
        paths = repo if isinstance(repo, RepoPaths) else inspect_repo(str(repo))
        self.store.revoke_trust(str(paths.path), FILE_NAME)
        return self.view(paths, base)

    # -- the API's entry points: a repository named by the request's path ----------

    async def view_of(self, repo_text: str, base: str = "HEAD") -> TrustView:
        repo = await self.repositories.open(repo_text)
        return await asyncio.to_thread(self.view, repo.paths, base)

    async def trust_of(self, repo_text: str, sha256: str | None, base: str = "HEAD") -> TrustView:
        repo = await self.repositories.open(repo_text)
        return await asyncio.to_thread(self.trust, repo.paths, sha256, base)

    async def revoke_of(self, repo_text: str, base: str = "HEAD") -> TrustView:
        repo = await self.repositories.open(repo_text)
        return await asyncio.to_thread(self.revoke, repo.paths, base)
