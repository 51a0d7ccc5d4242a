"""The agents kilod knows how to install and run, each pinned to a version tested here.

Stdlib only: the CLI imports this. A pin is a default, not a limit:
`kilod agents install NAME --version X` installs another one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BUILTIN = "builtin"

# where an installed agent is mounted (read-only) in every sandbox, and its per-attempt state (read-write)
AGENTS_MOUNT = "/opt/kilod/agents"
STATE_MOUNT = "/opt/kilod/state"


@dataclass(frozen=True)
class AgentPackage:
    name: str                          # what cards and the CLI call it
    project: str                       # the PyPI project it comes from
    version: str                       # the version installed when none is asked for
    kind: Literal["binary", "python"]  # a self-contained executable in a wheel, or a Python package
    entrypoint: str                    # the executable, relative to the installed dir
    keep: str = ""                     # binary: the wheel folder to extract (everything else is dropped)
    summary: str = ""

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"

    def mounted_at(self) -> str:
        return f"{AGENTS_MOUNT}/{self.name}"

    def executable(self) -> str:
        return f"{self.mounted_at()}/{self.entrypoint}"


CATALOG: dict[str, AgentPackage] = {
    p.name: p
    for p in (
        AgentPackage("claude-code", "claude-agent-sdk", "0.2.189", "binary", "claude",
                     keep="claude_agent_sdk/_bundled/",
                     summary="Anthropic's Claude Code (a glibc executable; Anthropic Messages API)"),
        AgentPackage("codex", "openai-codex-cli-bin", "0.163.0", "binary", "bin/codex",
                     keep="codex_cli_bin/",
                     summary="OpenAI's Codex CLI (a static musl executable; OpenAI Responses API)"),
        AgentPackage("aider", "aider-chat", "0.86.2", "python", "venv/bin/aider",
                     summary="aider (a venv built for the sandbox image's python3; OpenAI Chat API)"),
        AgentPackage("mini-swe-agent", "mini-swe-agent", "2.4.6", "python", "venv/bin/mini",
                     summary="mini-swe-agent (a venv built for the sandbox image's python3; OpenAI Chat API)"),
    )
}

AGENT_NAMES: tuple[str, ...] = (BUILTIN, *CATALOG)


def package(name: str) -> AgentPackage:
    """The catalog entry for `name`; ValueError naming the known ones otherwise."""
    try:
        return CATALOG[name]
    except KeyError:
        raise ValueError(f"unknown agent '{name}'; known: {', '.join(CATALOG)}") from None
