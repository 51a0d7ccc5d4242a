"""`.kilod.toml` at a repository's root: setup, copy, checks and network for its cards.

Read from the repository's own working tree when a card is created, validated, and
stored with the card (so a restart runs what was validated). A card may override
any key. Every error names the file, the key and the line.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kilod.environments.allowlist import normalise
from kilod.environments.caches import cache_paths
from kilod.errors import Invalid

FILE_NAME = ".kilod.toml"


# strict: `network = "yes"` is a mistake to report, not a string to coerce
class Check(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=100)
    run: str = Field(min_length=1)
    timeout: float | None = Field(None, gt=0, le=24 * 3600)


class RepoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    setup: list[str] = Field(default_factory=list, description="commands run in the sandbox before the agent")
    copy_files: list[str] = Field(default_factory=list, alias="copy",
                                  description="globs of untracked files copied from the repository into worktrees")
    checks: list[Check] = Field(default_factory=list, description="commands run in the sandbox after the agent")
    network: bool | list[str] | None = Field(
        None, description="sandbox network for this repository's cards: true (full), false (none) or "
                          "an allowlist of hosts reached through kilod's proxy ('pypi.org', '*.npmjs.org')")
    image: str | None = Field(None, min_length=1, max_length=255,
                              description="sandbox image for this repository (wins over .devcontainer)")
    dockerfile: str | None = Field(None, min_length=1, description="Dockerfile (relative to the repository root) "
                                   "kilod builds the sandbox image from, once per content hash")
    context: str | None = Field(None, min_length=1, description="build context of `dockerfile` (default: its folder)")
    args: dict[str, str] = Field(default_factory=dict, description="build arguments of `dockerfile`")
    env: dict[str, str] = Field(default_factory=dict, description="variables set in the sandbox")
    environment_notes: list[str] = Field(default_factory=list,
                                         description="what kilod noted reading .devcontainer (set by kilod)")
    caches: list[str] = Field(default_factory=list,
                              description="extra absolute paths in the sandbox kept in this repository's cache volumes")
    fix_rounds: int = Field(2, ge=0, le=10, description="times failing checks go back to the built-in agent "
                                                        "before the attempt waits in Review")

    @field_validator("setup", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("checks", mode="before")
    @classmethod
    def _check_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item.split()[0] if item.split() else item, "run": item} if isinstance(item, str)
                    else item for item in value]
        return value

    @field_validator("network", mode="before")
    @classmethod
    def _network_shape(cls, value: Any) -> Any:
        # one message for the union, instead of one per member (bool, list)
        if value is None or isinstance(value, bool | list):
            return value
        raise ValueError("expected true, false or a list of host names ('pypi.org', '*.npmjs.org')")

    @field_validator("network")
    @classmethod
    def _allowlist(cls, value: bool | list[str] | None) -> bool | list[str] | None:
        return normalise(value) if isinstance(value, list) else value

    @field_validator("caches")
    @classmethod
    def _cache_paths(cls, value: list[str]) -> list[str]:
        return cache_paths(value)

    @field_validator("dockerfile", "context")
    @classmethod
    def _in_repository(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in Path(value).parts):
            raise ValueError(f"'{value}' must be a path inside the repository")
        return value

    @field_validator("env")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"'{name}' is not a variable name")
        return value

    @field_validator("copy_files")
    @classmethod
    def _relative_globs(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if pattern.startswith("/") or ".." in Path(pattern).parts:
                raise ValueError(f"copy glob '{pattern}' must stay inside the repository")
        return value

    def merged(self, override: RepoSettings | None) -> RepoSettings:
        if override is None:
            return self
        chosen = {**self.model_dump(by_alias=True), **override.model_dump(by_alias=True, exclude_unset=True)}
        return RepoSettings.model_validate(chosen)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*(\[+\s*)?{re.escape(key)}\s*(=|\])", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def explain(error: ValidationError, path: str, text: str | None = None) -> str:
    """One message naming the file, each bad key and its line."""
    parts = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"]]
        key = ".".join(loc) or "(top level)"
        top = next((p for p in reversed(loc) if not p.isdigit()), None)
        line = _line_of(text, loc[0]) if text and loc else None
        if top and text and top != loc[0]:
            line = _line_of(text, top) or line
        where = f"{path}:{line}" if line else path
        problem = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        parts.append(f"{where}: {key}: {problem}")
    return "; ".join(parts)


def load(repo: Path) -> RepoSettings:
    """The repository's `.kilod.toml`, or empty settings when it has none."""
    path = repo / FILE_NAME
    if path.is_symlink() or not path.is_file():
        return RepoSettings()
    return parse(path.read_text(errors="replace"), path)


def parse(text: str, path: Path) -> RepoSettings:
    """Settings from the text of a settings file; Invalid names the file, the key and the line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Invalid(f"{path}: TOML syntax error: {exc}", field="repo") from None
    try:
        return RepoSettings.model_validate(data)
    except ValidationError as exc:
        raise Invalid(explain(exc, str(path), text), field="repo") from None


def parse_override(data: dict[str, Any]) -> RepoSettings:
    try:
        return RepoSettings.model_validate(data)
    except ValidationError as exc:
        raise Invalid(explain(exc, "settings"), field="settings") from None
