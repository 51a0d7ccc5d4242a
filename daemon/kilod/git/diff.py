"""An attempt's diff: unified text, structured files/hunks, its diffstat, and what deserves a second look.

All come from git comparing two trees (the base commit and the worktree's snapshot),
so nothing in the worktree is consulted: no textconv, no external diff. The diffstat
is read off the same parsed diff, so the two can never disagree. Blocking: call
from a thread.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypedDict

from kilod.git.memo import Memo
from kilod.git.names import exact, readable, shown
from kilod.git.paths import RepoPaths
from kilod.git.runner import run_git
from kilod.git.snapshot import DEFAULT_MAX_FILE_BYTES, MODE_EXECUTABLE, MODE_SYMLINK, Snapshot, snapshot

DIFF_OPTIONS = ("-M", "--no-color", "--no-ext-diff", "--no-textconv", "--full-index")
HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")

# Files that can run code on a person's machine later: build, CI, editor and tooling config.
BUILD_FILES = frozenset({
    "makefile", "gnumakefile", "cmakelists.txt", "setup.py", "setup.cfg", "pyproject.toml", "conftest.py",
    "tox.ini", "noxfile.py", "package.json", ".npmrc", ".yarnrc", ".yarnrc.yml", "cargo.toml", "build.rs",
    "build.gradle", "build.gradle.kts", "settings.gradle", "pom.xml", "dockerfile", "docker-compose.yml",
    "docker-compose.yaml", "compose.yaml", "compose.yml", "jenkinsfile", ".gitlab-ci.yml", ".travis.yml",
    ".pre-commit-config.yaml", ".envrc", "justfile", "rakefile", "gemfile", "meson.build", "build.ninja",
    "go.mod", ".bashrc", ".profile", ".zshrc", "requirements.txt", ".python-version", ".tool-versions",
})
TOOLING_DIRS = {".github": "CI workflows", ".gitlab": "CI configuration", ".circleci": "CI configuration",
                ".vscode": "editor configuration (can run tasks)", ".devcontainer": "devcontainer definition",
                ".idea": "IDE configuration", ".husky": "git hooks"}
# Files that steer later agents or kilod itself: an agent that writes them speaks to the next one.
AGENT_INSTRUCTIONS = frozenset({"agents.md", "claude.md", "gemini.md", "conventions.md", ".cursorrules",
                                ".windsurfrules", "copilot-instructions.md", ".aider.conf.yml", ".clinerules"})


def risks(path: str, old_mode: str | None, new_mode: str | None) -> list[str]:
    """Why a changed path deserves a look before it is opened or run on a person's machine."""
    parts = PurePosixPath(path).parts
    found = []
    if any(p == ".git" or p.startswith(".git") for p in parts):
        found.append("git configuration (.git*)")
    if parts and parts[0] in TOOLING_DIRS:
        found.append(TOOLING_DIRS[parts[0]])
    name = parts[-1].lower() if parts else ""
    if path == ".kilod.toml":
        found.append("kilod settings (sandbox of later cards; applies once trusted)")
    if name in AGENT_INSTRUCTIONS or (parts and parts[0] in (".cursor", ".claude")):
        found.append("instructions to coding agents")
    if name in BUILD_FILES or name.endswith((".mk", ".gradle", ".gradle.kts")):
        found.append("build or CI file")
    if new_mode == MODE_EXECUTABLE and old_mode != MODE_EXECUTABLE:
        found.append("made executable")
    if new_mode == MODE_SYMLINK:
        found.append("symlink")
    return found


@dataclass
class Hunk:
    header: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FileDiff:
    path: str
    old_path: str | None
    status: str
    binary: bool
    additions: int
    deletions: int
    old_mode: str | None = None
    new_mode: str | None = None
    hunks: list[Hunk] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": shown(self.path),               # `\\xNN` for bytes that are not UTF-8
            "path_base64": exact(self.path),        # the name's exact bytes
            "old_path": None if self.old_path is None else shown(self.old_path),
            "old_path_base64": None if self.old_path is None else exact(self.old_path),
            "status": self.status,
            "binary": self.binary,
            "additions": self.additions,
            "deletions": self.deletions,
            "old_mode": self.old_mode,
            "new_mode": self.new_mode,
            "risks": risks(self.path, self.old_mode, self.new_mode),
            "hunks": [
                {"header": h.header, "old_start": h.old_start, "old_lines": h.old_lines,
                 "new_start": h.new_start, "new_lines": h.new_lines,
                 "lines": [{**line, "text": readable(line["text"])} for line in h.lines]}
                for h in self.hunks
            ],
        }

    def new_lines_in_diff(self) -> set[int]:
        """New-side line numbers a review comment may point at (added or context lines)."""
        return {line["new"] for h in self.hunks for line in h.lines if line["new"] is not None}


def numstat(git_dir: Path, base: str, tree: str) -> list[tuple[int | None, int | None, str | None, str]]:
    """(added, deleted, old path of a rename, path) per changed file; None counts for binary files."""
    out = run_git("diff", *DIFF_OPTIONS, "--numstat", "-z", base, tree, git_dir=git_dir)
    fields = out.split("\0")
    result: list[tuple[int | None, int | None, str | None, str]] = []
    i = 0
    while i < len(fields) and fields[i]:
        added, deleted, path = fields[i].split("\t", 2)
        old: str | None = None
        if path == "":
            old, path = fields[i + 1], fields[i + 2]
            i += 2
        result.append((None if added == "-" else int(added), None if deleted == "-" else int(deleted), old, path))
        i += 1
    return result


def _sections(patch: str) -> list[list[str]]:
    sections: list[list[str]] = []
    for line in patch.split("\n"):
        if line.startswith("diff --git "):
            sections.append([])
        if sections:
            sections[-1].append(line)
    return sections


def _parse_section(lines: list[str], stat: tuple[int | None, int | None, str | None, str]) -> FileDiff:
    added, deleted, old_path, path = stat
    diff = FileDiff(path=path, old_path=old_path, status="renamed" if old_path else "modified",
                    binary=added is None, additions=added or 0, deletions=deleted or 0)
    hunk: Hunk | None = None
    old_no = new_no = 0
    for line in lines[1:]:
        if hunk is None:
            if line.startswith("new file mode "):
                diff.status, diff.new_mode = "added", line.split()[-1]
            elif line.startswith("deleted file mode "):
                diff.status, diff.old_mode = "deleted", line.split()[-1]
            elif line.startswith("old mode "):
                diff.old_mode = line.split()[-1]
            elif line.startswith("new mode "):
                diff.new_mode = line.split()[-1]
            elif line.startswith("index ") and len(line.split()) == 3:
                diff.old_mode = diff.new_mode = line.split()[-1]
        match = HUNK_HEADER.match(line)
        if match:
            hunk = Hunk(line, int(match[1]), int(match[2] or 1), int(match[3]), int(match[4] or 1))
            old_no, new_no = hunk.old_start, hunk.new_start
            diff.hunks.append(hunk)
            continue
        if hunk is None or not line:
            continue
        kind, text = line[0], line[1:]
        if kind == "+":
            hunk.lines.append({"kind": "add", "old": None, "new": new_no, "text": text})
            new_no += 1
        elif kind == "-":
            hunk.lines.append({"kind": "delete", "old": old_no, "new": None, "text": text})
            old_no += 1
        elif kind == " ":
            hunk.lines.append({"kind": "context", "old": old_no, "new": new_no, "text": text})
            old_no += 1
            new_no += 1
        elif kind == "\\":
            hunk.lines.append({"kind": "note", "old": None, "new": None, "text": text.strip()})
    return diff


@dataclass(frozen=True)
class FileStat:
    path: str             # as shown (names.shown); "old => new" for a rename
    added: int | None     # None for binary files
    deleted: int | None


class FileStatJson(TypedDict):
    path: str
    added: int | None
    deleted: int | None
    binary: bool


@dataclass(frozen=True)
class Diff:
    base: str
    tree: str
    text: str               # the unified patch
    files: list[FileDiff]

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)

    def stat(self) -> list[FileStat]:
        return [FileStat(f"{shown(f.old_path)} => {shown(f.path)}" if f.old_path else shown(f.path),
                         None if f.binary else f.additions, None if f.binary else f.deletions)
                for f in self.files]

    def stat_json(self) -> list[FileStatJson]:
        return [{"path": s.path, "added": s.added, "deleted": s.deleted, "binary": s.added is None}
                for s in self.stat()]


# (git dir, base, tree) → their diff, for a person asking again (memo.py); large patches are not kept
_DIFFS: Memo[tuple[str, str, str], Diff] = Memo(entries=64, seconds=3600)
_KEPT_BYTES = 1024 * 1024


def diff_trees(git_dir: Path, base: str, tree: str) -> Diff:
    """base → tree: the patch, and each file parsed with its counts."""
    key = (str(git_dir), base, tree)
    known = _DIFFS.get(key)
    if known is not None:
        return known
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="numstat") as pool:  # both git runs at once
        counting = pool.submit(numstat, git_dir, base, tree)
        text = run_git("diff", *DIFF_OPTIONS, base, tree, git_dir=git_dir)
        stats = counting.result()
    sections = _sections(text)
    files = [_parse_section(section, stat) for section, stat in zip(sections, stats, strict=False)]
    diff = Diff(base, tree, text, files)
    if len(text) <= _KEPT_BYTES:
        _DIFFS.put(key, diff)
    return diff


def worktree_diff(repo: RepoPaths, worktree: Path, base_commit: str,
                  max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[Snapshot, Diff]:
    """The worktree's snapshot and its diff against the base, untracked (not ignored) files included.

    No `git add`, no filter, and neither the agent's index nor the user's is touched.
    """
    snap = snapshot(repo, worktree, base_commit, max_file_bytes)
    return snap, diff_trees(repo.worktree_git_dir(worktree), base_commit, snap.tree)
