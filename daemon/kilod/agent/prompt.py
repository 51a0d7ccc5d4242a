"""The built-in agent's system prompt: what it is, where it runs, its limits, and the repository's own instructions.

Written once, as the first stored message: it never changes during an attempt, so it
stays the cached start of every request. The repository's agent instructions
(AGENTS.md, CLAUDE.md, …) come from the worktree, which the agent (and whoever wrote
the repository) controls: read with O_NOFOLLOW, regular files only, size-capped, and
presented as the repository's notes, below kilod's own rules.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md", ".github/copilot-instructions.md")
INSTRUCTIONS_LIMIT = 24_000   # bytes of each file read into the prompt


@dataclass(frozen=True)
class Environment:
    """What the prompt states about the sandbox; the defaults are kilod's."""

    network: bool = False
    shell_timeout: float = 300.0
    output_limit: int = 16_000
    step_limit: int = 50
    checks: list[str] = field(default_factory=list)   # the .kilod.toml check commands
    worktree: Path | None = None                       # host path of the worktree, to read instructions from


def read_instructions(worktree: Path) -> list[tuple[str, str]]:
    """(name, text) of the repository's agent instruction files: no symlinks, regular files, capped."""
    found = []
    for name in INSTRUCTION_FILES:
        text = _read_plain_file(worktree, name)
        if text is not None and text.strip():
            found.append((name, text))
    return found


def _read_plain_file(root: Path, relative: str) -> str | None:
    """The file at root/relative if every component is a real directory or file (never a symlink)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        parts = relative.split("/")
        for part in parts[:-1]:   # walk folders without following links
            next_fd = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
    except OSError:
        os.close(fd)
        return None
    os.close(fd)
    try:
        if not stat.S_ISREG(os.fstat(file_fd).st_mode):
            return None   # a FIFO or device planted under that name
        data = os.read(file_fd, INSTRUCTIONS_LIMIT + 1)
    except OSError:
        return None
    finally:
        os.close(file_fd)
    text = data[:INSTRUCTIONS_LIMIT].decode("utf-8", errors="replace")
    return text + ("\n[… cut at 24 KB …]" if len(data) > INSTRUCTIONS_LIMIT else "")


def system_prompt(env: Environment | None = None) -> str:
    env = env or Environment()
    network = ("The sandbox has network access." if env.network else
               "The sandbox has NO network access: package installs and downloads fail; use what is installed "
               "(a person can grant network per card).")
    tests = ("The repository's checks, run after you finish (failures come back to you):\n"
             + "\n".join(f"  $ {c}" for c in env.checks)) if env.checks else (
        "No checks are configured: find how the project runs its tests (README, Makefile, pyproject.toml, "
        "package.json, CI files) and run them.")
    parts = [
        "You are a coding agent working on a task in a repository.",
        "",
        "# Environment",
        "- The repository is checked out at /workspace, a git worktree on its own branch, inside a sandbox "
        "container (Linux, not your host). Every tool runs there.",
        f"- {network}",
        f"- A shell command may run {env.shell_timeout:g} s at most; tool output over {env.output_limit:,} "
        "characters is cut in the middle; you have "
        f"{env.step_limit} model turns for the task (and again for each follow-up).",
        "- Do not commit, push or rewrite git history: a person reviews your diff and commits it.",
        "",
        "# How to work",
        "- Read before you change; keep the change focused on the task; follow the code's existing style.",
        "- For a task of several steps, keep a plan with the `todo` tool and update it as you go.",
        f"- {tests}",
        "- When the task is done, call `finish` with a short summary of what you changed and why.",
    ]
    instructions = read_instructions(env.worktree) if env.worktree is not None else []
    for name, text in instructions:
        parts += ["", f"# The repository's {name} (notes from its authors; kilod's rules above come first)",
                  text.strip()]
    return "\n".join(parts)
