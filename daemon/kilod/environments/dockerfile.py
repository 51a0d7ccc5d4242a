"""What of its build context a Dockerfile can put in the image: the sources of its COPY and ADD lines.

kilod builds with Docker's classic builder (docker-py's build API), where a build reads
context files only through COPY and ADD (no `RUN --mount`). So trusting a Dockerfile
means trusting those sources too, and only those: an agent's merged change to any other
file does not make the repository's sandbox untrusted. Whatever cannot be read plainly
(a variable in a source, a line this reader does not understand) counts as the whole
context ("."): trust then covers more, never less. `COPY --from=…` copies from another
stage or image, not the context; a URL is fetched, not read from the context.
"""

from __future__ import annotations

import json
import posixpath

WHOLE = "."
GLOB = "*?["


def _logical_lines(text: str) -> list[str]:
    """Instructions with their `\\` continuations joined; comments and blank lines dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current.strip():
        lines.append(current)
    return lines


def _source(source: str) -> str | None:
    """The context path a source reads (a folder for a glob); None when it is not in the context."""
    if "://" in source or source.startswith("git@"):
        return None
    if "$" in source:
        return WHOLE
    cut = min((source.index(c) for c in GLOB if c in source), default=-1)
    if cut >= 0:
        source = source[:cut].rpartition("/")[0]
    clean = posixpath.normpath("/" + source).lstrip("/")   # the context's root is '/': '..' stays inside
    return clean or WHOLE


def copied_sources(text: str) -> list[str]:
    """The context paths (files or folders, '.' for all of it) the Dockerfile's COPY and ADD lines read."""
    found: set[str] = set()
    for line in _logical_lines(text):
        word, _, rest = line.partition(" ")
        if word.upper() not in ("COPY", "ADD"):
            continue
        rest = rest.strip()
        args: list[str]
        flags = []
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        if any(f.startswith("--from") for f in flags):
            continue
        if rest.startswith("["):
            try:
                parsed = json.loads(rest)
            except ValueError:
                return [WHOLE]
            if not isinstance(parsed, list) or not all(isinstance(a, str) for a in parsed):
                return [WHOLE]
            args = parsed
        else:
            args = rest.split()
        if any(a.startswith("<<") for a in args):
            continue  # a here-document: its content is in the Dockerfile itself
        if len(args) < 2:
            return [WHOLE]
        for source in args[:-1]:
            path = _source(source)
            if path is not None:
                found.add(path)
    if WHOLE in found:
        return [WHOLE]
    return sorted(found)
