"""What the file tools answer: a window of a file, the region an edit changed, a todo list, shell commands.

Pure text work, tested without a container; tools.py runs them against the sandbox.
Like Claude Code's Read/Edit tools and SWE-agent's ACI: a bounded window with a note
of what was left out, and an edit that answers with the edited lines (and a syntax
check for Python) so the model sees its mistake at once instead of three steps later.
"""

from __future__ import annotations

import ast
import shlex
import warnings
from dataclasses import dataclass
from typing import Any

READ_LINES = 400          # lines read_file shows when no limit is given
LINE_CHARS = 500          # characters of one line shown; longer lines are cut
EDIT_CONTEXT = 3          # lines around an edit shown in its answer
LIST_LIMIT = 1_000        # paths list_files shows
SEARCH_LIMIT = 300        # matching lines search shows
TODO_STATUSES = ("pending", "in_progress", "done")


def read_window(path: str, text: str, offset: int, limit: int | None, char_budget: int) -> str:
    """Lines offset.. of `text`, numbered, within `limit` lines and `char_budget` characters, with a note."""
    lines = text.splitlines()
    if not lines:
        return f"{path} is empty"
    start = max(1, offset)
    if start > len(lines):
        return f"{path} has {len(lines)} lines; offset {start} is past its end"
    wanted = READ_LINES if limit is None else max(1, limit)
    shown: list[str] = []
    used = 0
    end = start - 1
    for number in range(start, min(len(lines), start - 1 + wanted) + 1):
        line = lines[number - 1]
        if len(line) > LINE_CHARS:
            line = line[:LINE_CHARS] + f" [… {len(line) - LINE_CHARS} characters cut]"
        entry = f"{number:>6}\t{line}"
        if shown and used + len(entry) + 1 > char_budget:
            break
        shown.append(entry)
        used += len(entry) + 1
        end = number
    notes = []
    if start > 1:
        notes.append(f"lines 1-{start - 1} not shown")
    if end < len(lines):
        notes.append(f"lines {end + 1}-{len(lines)} not shown; read on with offset={end + 1}")
    if notes:
        shown.append(f"[{path}: {len(lines)} lines; {'; '.join(notes)}]")
    return "\n".join(shown)


def edited_region(text: str, start: int, length: int) -> str:
    """Numbered lines around characters [start, start+length) of the edited text."""
    lines = text.splitlines()
    first = text.count("\n", 0, start) + 1
    last = text.count("\n", 0, start + max(0, length - 1)) + 1 if length else first
    low, high = max(1, first - EDIT_CONTEXT), min(len(lines), last + EDIT_CONTEXT)
    return "\n".join(f"{n:>6}\t{lines[n - 1][:LINE_CHARS]}" for n in range(low, high + 1))


def python_problem(path: str, text: str) -> str | None:
    """A syntax error in Python source (parsed, never run), or None. Only .py files are checked."""
    if not path.endswith(".py") or len(text) > 2_000_000:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # SyntaxWarnings of the agent's code are not ours to print
            ast.parse(text, filename=path)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"cannot be parsed: {type(exc).__name__}"
    return None


@dataclass(frozen=True)
class TodoItem:
    text: str
    status: str

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "status": self.status}


def parse_todo(items: Any) -> list[TodoItem]:
    """The model's todo list, checked; ValueError names what is wrong."""
    if not isinstance(items, list):
        raise ValueError("items must be a list of {text, status}")
    if len(items) > 100:
        raise ValueError("at most 100 items")
    todo = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ValueError(f"item {n} needs a non-empty 'text'")
        status = item.get("status", "pending")
        if status not in TODO_STATUSES:
            raise ValueError(f"item {n}: status must be one of {', '.join(TODO_STATUSES)}")
        todo.append(TodoItem(item["text"].strip()[:500], status))
    return todo


def render_todo(todo: list[TodoItem]) -> str:
    if not todo:
        return "todo list cleared"
    marks = {"pending": "[ ]", "in_progress": "[~]", "done": "[x]"}
    done = sum(1 for t in todo if t.status == "done")
    return "\n".join([f"todo ({done}/{len(todo)} done):", *(f"{marks[t.status]} {t.text}" for t in todo)])


def list_command(path: str, depth: int, glob: str | None) -> str:
    """Files under `path` honouring .gitignore (ripgrep), hidden files shown but not .git; find without rg."""
    where = shlex.quote(path)
    pattern = f" -g {shlex.quote(glob)}" if glob else ""
    name = f" -name {shlex.quote(glob)}" if glob else ""
    return (
        f"if command -v rg >/dev/null 2>&1; then rg --files --hidden --no-require-git -g '!.git' "
        f"--max-depth {depth}{pattern} -- {where}; "
        f"else find {where} -mindepth 1 -maxdepth {depth} -type f -not -path '*/.git/*'{name}; fi "
        f"| LC_ALL=C sort | head -n {LIST_LIMIT + 1}"
    )


def search_command(pattern: str, path: str, glob: str | None, ignore_case: bool) -> str:
    """Matching lines as file:line:text, honouring .gitignore (ripgrep), or grep without rg."""
    quoted, where = shlex.quote(pattern), shlex.quote(path)
    flags = " -i" if ignore_case else ""
    rg_glob = f" -g {shlex.quote(glob)}" if glob else ""
    grep_glob = f" --include={shlex.quote(glob)}" if glob else ""
    return (
        f"if command -v rg >/dev/null 2>&1; then rg -n --no-heading --color never --hidden --no-require-git -g '!.git'"
        f" -M 300 --max-columns-preview{rg_glob}{flags} -e {quoted} -- {where}; "
        f"else grep -rnE --exclude-dir=.git{grep_glob}{flags} -e {quoted} -- {where}; fi | head -n {SEARCH_LIMIT + 1}"
    )


def cap_lines(output: str, limit: int, what: str) -> str:
    lines = output.splitlines()
    if len(lines) <= limit:
        return output
    return "\n".join([*lines[:limit], f"[more than {limit} {what}; narrow the path or glob]"])
