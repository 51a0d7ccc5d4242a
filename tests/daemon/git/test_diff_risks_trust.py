"""The diff flags files that steer later cards: kilod's own settings and coding agents' instruction files."""

from __future__ import annotations

import pytest

from kilod.git.diff import risks


@pytest.mark.parametrize(("path", "flag"), [
    (".kilod.toml", "kilod settings (sandbox of later cards; applies once trusted)"),
    ("AGENTS.md", "instructions to coding agents"),
    ("docs/CLAUDE.md", "instructions to coding agents"),
    (".cursor/rules/style.mdc", "instructions to coding agents"),
    (".claude/settings.json", "instructions to coding agents"),
    (".github/copilot-instructions.md", "instructions to coding agents"),
    (".devcontainer/devcontainer.json", "devcontainer definition"),
])
def test_files_that_steer_later_cards_are_flagged(path: str, flag: str) -> None:
    assert flag in risks(path, None, "100644")


def test_ordinary_files_are_not() -> None:
    assert risks("src/agents.py", None, "100644") == []
    assert risks("sub/.kilod.toml", None, "100644") == []  # only the root file is read
