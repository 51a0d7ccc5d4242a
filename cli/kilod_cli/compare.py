"""A card's attempts side by side: `kilod ctl compare` (the table, the files each touched, one
file's diff for every attempt in turn) and `kilod ctl pick` (approve one, discard the rest).

Standard library only at import time; rich and pygments load only to draw for a person.
Data goes to stdout, messages to stderr; failures raise `CliError`.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from kilod_cli.client import ApiError, Client, segment
from kilod_cli.desk import attempt_path, land, landing_lines, page, print_pairs
from kilod_cli.text import visible

EXIT_OK = 0
EXIT_FAILURE = 1
NOT_CHANGED = "not changed by this attempt"
# Where each file's section of a unified diff starts (hunk lines never start with "diff").
SECTION_START = re.compile(r"^diff --git ", re.MULTILINE)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def compare_path(card_id: str) -> str:
    return f"/v1/cards/{segment(card_id)}/compare"


# -- one file across the attempts ----------------------------------------


@dataclass
class AttemptFile:
    """One attempt's side of `compare --diff FILE`: the file's diff, or why there is none."""

    attempt_id: str
    model: str
    file: dict[str, Any] | None = None   # the structured diff of FILE (diffview's shape)
    text: str | None = None              # FILE's section of the unified diff, exactly as the daemon sent it
    missing: str | None = None           # why there is no diff: not changed, or not available

    def to_json(self) -> dict[str, Any]:
        return {"attempt_id": self.attempt_id, "model": self.model, "changed": self.file is not None,
                "file": self.file, "text": self.text, "note": self.missing}


def file_sections(text: str) -> list[str]:
    """A unified diff cut into its files' sections, each from its `diff --git` line, byte for byte."""
    starts = [match.start() for match in SECTION_START.finditer(text)]
    return [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]


def find_file(diff: dict[str, Any], path: str) -> tuple[dict[str, Any], str | None] | None:
    """FILE in an attempt's diff (`format=both`): its structured part and its section of the text.

    A path matches a file by its new name or, for a rename, its old one. The daemon pairs
    the text's sections with the files in order; so does this.
    """
    files: list[dict[str, Any]] = diff.get("files") or []
    sections = file_sections(str(diff.get("text") or ""))
    for index, file in enumerate(files):
        if path in (file.get("path"), file.get("old_path")):
            return file, sections[index] if index < len(sections) else None
    return None


def one_file(client: Client, row: dict[str, Any], path: str) -> AttemptFile:
    found = AttemptFile(str(row["attempt_id"]), str(row.get("model") or "?"))
    if row.get("files_changed") is None:  # the daemon knows no files: worktree and landed commit gone
        found.missing = f"unknown: the attempt is {row.get('state')} and its changes are gone"
        return found
    try:
        diff = client.get(attempt_path(found.attempt_id, "diff") + "?format=both")
    except ApiError as exc:
        if exc.status not in (404, 409):
            raise
        # an approved attempt's worktree is gone, but compare still knows the files it changed
        found.missing = (NOT_CHANGED if path not in row.get("files", [])
                         else f"changed, but its diff is not available: {exc.message}")
        return found
    match = find_file(diff, path)
    if match is None:
        found.missing = NOT_CHANGED
    else:
        found.file, found.text = match
    return found


def plain_header(item: AttemptFile) -> str:
    return f"### attempt {visible(item.attempt_id)} ({visible(item.model)})\n"


def plain_file_diffs(items: list[AttemptFile]) -> str:
    """What `--diff FILE` prints when piped: per attempt a header line, then the file's section
    of the daemon's unified diff exactly (or one line saying why there is none)."""
    parts: list[str] = []
    for item in items:
        parts.append(plain_header(item))
        if item.text is not None:
            parts.append(item.text if item.text.endswith("\n") else item.text + "\n")
        elif item.file is not None:
            parts.append("(no patch text for this file)\n")
        else:
            parts.append(f"{item.missing}\n")
    return "".join(parts)


def compare(client: Client, card_id: str, as_json: bool, diff_file: str | None, use_pager: bool) -> int:
    data: dict[str, Any] = client.get(compare_path(card_id))
    if diff_file is not None:
        path = diff_file.removeprefix("./")
        items = [one_file(client, row, path) for row in data.get("rows") or []]
        if as_json:
            _print_json({"card_id": data.get("card_id"), "path": path, "attempts": [i.to_json() for i in items]})
            return EXIT_OK
        if not items:
            _say(f"card {card_id} has no attempts")
        return print_file_diffs(data, path, items, use_pager)
    if as_json:
        _print_json(data)
        return EXIT_OK
    from kilod_cli.compareview import compare_view
    from kilod_cli.render import make_console

    console = make_console()
    for renderable in compare_view(data, console):
        console.print(renderable)
    return EXIT_OK


def print_file_diffs(data: dict[str, Any], path: str, items: list[AttemptFile], use_pager: bool) -> int:
    from kilod_cli.render import make_console

    console = make_console()
    if not console.is_terminal:
        sys.stdout.buffer.write(plain_file_diffs(items).encode("utf-8", errors="replace"))
        sys.stdout.flush()
        return EXIT_OK
    from kilod_cli.compareview import file_diffs_view

    if not (use_pager and sys.stdout.isatty()):
        for renderable in file_diffs_view(data, path, items):
            console.print(renderable)
        return EXIT_OK
    with console.capture() as capture:
        for renderable in file_diffs_view(data, path, items):
            console.print(renderable)
    page(capture.get())
    return EXIT_OK


# -- pick ----------------------------------------------------------------


def pick(client: Client, attempt_id: str, message: str | None, merge: bool, as_json: bool,
         assume_yes: bool = False) -> int:
    """Approve this attempt (the daemon discards its siblings) and say which ones went."""
    result = land(client, attempt_id, message, merge, None, assume_yes)
    if result is None:
        return EXIT_FAILURE
    if as_json:
        _print_json(result)
        return EXIT_OK
    lines = landing_lines(result)
    discarded = [str(d) for d in result.get("discarded") or []]
    if not discarded:
        lines.append(("discarded", "none (no other attempt of this card was still open)"))
    print_pairs(lines)
    model = (result.get("attempt") or {}).get("model")
    picked = f"{attempt_id} ({visible(str(model))})" if model else attempt_id
    if discarded:
        _say(f"picked {picked}; discarded {len(discarded)} sibling{'s' if len(discarded) != 1 else ''} "
             f"(container, worktree and branch removed): {', '.join(discarded)}")
    else:
        _say(f"picked {picked}; no sibling left to discard")
    return EXIT_OK
