"""`.devcontainer/devcontainer.json`: the common subset, read into `.kilod.toml`'s own keys.

Taken: `image`, `build.dockerfile`, `build.context`, `build.args`, `containerEnv`,
`onCreateCommand` and `postCreateCommand` (as setup, in that order). `remoteUser`
and `containerUser` are ignored with a note (kilod chooses the user); other keys
(features, mounts, forwardPorts, …) are noted as not supported. Paths in `build`
are relative to the folder of devcontainer.json, as the spec says; they are turned
into paths relative to the repository root and must stay inside it.

JSON with comments: `//` and `/* */` comments and trailing commas are removed
outside strings before `json.loads`.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from kilod.errors import Invalid
from kilod.repo_settings import RepoSettings, explain

if TYPE_CHECKING:  # kilod.trust reads the devcontainer to hash it: no import cycle at run time
    from kilod.trust import SettingsSource

CANDIDATES = (".devcontainer/devcontainer.json", ".devcontainer.json")
IGNORED_USER_KEYS = ("remoteUser", "containerUser")
TAKEN_KEYS = ("image", "build", "containerEnv", "onCreateCommand", "postCreateCommand", "name",
              "$schema", "customizations")
MAX_BYTES = 256 * 1024


def strip_jsonc(text: str) -> str:
    """JSON with comments → JSON: drop comments and trailing commas that are not inside strings."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "]}":
                i += 1  # a trailing comma
                continue
            out.append(c)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _command(value: Any, where: str) -> list[str]:
    """A lifecycle command: a string (run by a shell), an array (one argv) or an object (several, in parallel)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [shlex.join(value)] if value else []
    if isinstance(value, dict):
        return [c for key in value for c in _command(value[key], f"{where}.{key}")]
    raise Invalid(f"{where}: expected a string, an array of strings or an object", field="repo")


def _inside(repo: Path, folder: str, relative: str, where: str) -> str:
    joined = posixpath.normpath(posixpath.join(folder, relative))
    if joined.startswith("../") or joined == ".." or posixpath.isabs(relative):
        raise Invalid(f"{where}: '{relative}' leads outside the repository", field="repo")
    return joined


def read(repo: Path) -> tuple[dict[str, Any], list[str]] | None:
    """`.kilod.toml` keys taken from the repository's devcontainer.json and notes on what was left; None without one."""
    candidate = present(repo)
    if candidate is None:
        return None
    found = repo / candidate
    relative = found.relative_to(repo).as_posix()
    if found.stat().st_size > MAX_BYTES:
        raise Invalid(f"{relative}: larger than {MAX_BYTES // 1024} KiB", field="repo")
    try:
        data = json.loads(strip_jsonc(found.read_text(errors="replace")))
    except json.JSONDecodeError as exc:
        raise Invalid(f"{relative}:{exc.lineno}: not JSON (with comments): {exc.msg}", field="repo") from None
    if not isinstance(data, dict):
        raise Invalid(f"{relative}: expected a JSON object", field="repo")
    folder = posixpath.dirname(relative)
    keys: dict[str, Any] = {}
    notes: list[str] = []
    build = data.get("build")
    if isinstance(build, dict) and build.get("dockerfile"):
        keys["dockerfile"] = _inside(repo, folder, str(build["dockerfile"]), f"{relative}: build.dockerfile")
        keys["context"] = _inside(repo, folder, str(build.get("context", ".")), f"{relative}: build.context")
        args = build.get("args") or {}
        if not isinstance(args, dict):
            raise Invalid(f"{relative}: build.args must be an object", field="repo")
        keys["args"] = {str(k): str(v) for k, v in args.items()}
    elif data.get("image"):
        keys["image"] = str(data["image"])
    env = data.get("containerEnv") or {}
    if not isinstance(env, dict):
        raise Invalid(f"{relative}: containerEnv must be an object", field="repo")
    if env:
        keys["env"] = {str(k): str(v) for k, v in env.items()}
    setup = (_command(data.get("onCreateCommand"), f"{relative}: onCreateCommand")
             + _command(data.get("postCreateCommand"), f"{relative}: postCreateCommand"))
    if setup:
        keys["setup"] = setup
    for key in IGNORED_USER_KEYS:
        if key in data:
            notes.append(f"{relative}: {key} ignored: kilod runs sandboxes as its own unprivileged user")
    unsupported = sorted(k for k in data if k not in TAKEN_KEYS and k not in IGNORED_USER_KEYS)
    if unsupported:
        notes.append(f"{relative}: not supported, ignored: {', '.join(unsupported)}")
    return keys, notes


def present(repo: Path) -> str | None:
    """The devcontainer file kilod would read, relative to the repository, or None.

    Never through a symbolic link, the file's or a folder's (`.devcontainer` → elsewhere):
    the content trusted would not be the content used.
    """
    return next((c for c in CANDIDATES if _plain_file(repo, c)), None)


def _plain_file(repo: Path, relative: str) -> bool:
    path = repo
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            return False
    return path.is_file()


def apply_trusted(repo: Path, settings: RepoSettings, source: SettingsSource, shown: Path | None = None
                  ) -> RepoSettings:
    """`apply` when the repository's settings are trusted; otherwise the devcontainer is noted, not used.

    `repo`: where the files are (a commit's, written out); `shown`: the repository named in notes.

    A devcontainer builds an image (its RUN lines run in Docker) and sets setup commands:
    like `.kilod.toml`'s widening keys it waits for a person's trust (`kilod ctl trust`), which
    covers the devcontainer and its Dockerfile too (`kilod.trust.sandbox_files`).
    """
    if settings.image or settings.dockerfile:
        return settings
    found = present(repo)
    if found is None:
        return settings
    if not source["trusted"]:
        source["ignored"] = [*source["ignored"], found]
        files = ", ".join(source.get("files") or [found])
        note = (f"{found} not used (no image built, no containerEnv, no setup from it): the repository's "
                f"sandbox files are not trusted; review {files} and trust them with `kilod ctl trust {shown or repo}`")
        source["note"] = f"{source['note']}; {note}" if source["note"] else note
        return settings
    return apply(repo, settings)


def apply(repo: Path, settings: RepoSettings) -> RepoSettings:
    """`.kilod.toml`'s settings with the devcontainer's filled in; `image`/`dockerfile` there win outright."""
    if settings.image or settings.dockerfile:
        return settings
    found = read(repo)
    if found is None:
        return settings
    keys, notes = found
    env: dict[str, str] = {**keys.get("env", {}), **settings.env}
    merged: dict[str, Any] = {
        **settings.model_dump(by_alias=True, exclude_unset=True),
        **{k: keys[k] for k in ("image", "dockerfile", "context", "args") if k in keys},
        "env": env,
        "setup": [*keys.get("setup", []), *settings.setup],
        "environment_notes": [*settings.environment_notes, *notes],
    }
    try:
        return RepoSettings.model_validate(merged)
    except ValidationError as exc:
        raise Invalid(explain(exc, CANDIDATES[0]), field="repo") from None
