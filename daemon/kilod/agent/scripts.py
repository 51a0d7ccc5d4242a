"""Scripts for the `scripted/<name>` provider: deterministic tool calls, no network.

A script is JSON: {"description": str, "steps": [step, …]}, each step
{"say": str?, "tools": [{"name": str, "arguments": {…}}]?, "delay": seconds?,
 "usage": {"prompt_tokens": int, "completion_tokens": int}?}.
A script may declare {"price": {"input_cost_per_token": …, "output_cost_per_token": …}};
it is registered with litellm, so cost is computed the way it is for real models, and
{"context_window": tokens}: the model's window (a larger request is refused, as a provider would).
Strings may hold {{last_user}} (the person's latest message), {{message_count}} and
{{roles}} (the conversation's roles in order): a script can show what it was told.
Built-in scripts ship in this package; `scripts_dir` (KILOD_SCRIPTS_DIR) adds more.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kilod.errors import Invalid

BUILTIN_DIR = Path(__file__).parent / "scripts"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _dirs(extra: Path | None) -> list[Path]:
    return [d for d in (extra, BUILTIN_DIR) if d is not None]


def known(extra: Path | None) -> list[str]:
    names = {p.stem for d in _dirs(extra) if d.is_dir() for p in d.glob("*.json")}
    return sorted(names)


def load(name: str, extra: Path | None) -> dict[str, Any]:
    if not _NAME.match(name or ""):
        raise Invalid(f"bad script name '{name}'", field="models")
    for folder in _dirs(extra):
        path = folder / f"{name}.json"
        if path.is_file():
            try:
                script = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise Invalid(f"script {path} is not valid JSON: {exc}") from exc
            if not isinstance(script, dict) or not isinstance(script.get("steps"), list):
                raise Invalid(f"script {path} needs a list of 'steps'")
            return script
    raise Invalid(
        f"no script named '{name}' for scripted/{name}; known: {', '.join(known(extra)) or 'none'}",
        field="models",
    )
