"""The review desk from the command line: diff, comments, approve and merge, discard, cancel,
retry, follow up (a shell and an editor on the worktree: desk_open.py).

Standard library only at import time; rich and pygments load only to draw a diff for a
person. Data goes to stdout, messages to stderr; failures raise `CliError`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from typing import Any

from kilod_cli.client import ApiError, Client, CliError, segment
from kilod_cli.text import visible

EXIT_OK = 0
EXIT_FAILURE = 1
DEFAULT_PAGER = "less -R"
# What git sets when LESS is unset: quit if it fits on one screen, colours, keep the output on screen.
DEFAULT_LESS = "FRX"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def attempt_path(attempt_id: str, *rest: str) -> str:
    return "/".join([f"/v1/attempts/{segment(attempt_id)}", *rest])


# -- diff ----------------------------------------------------------------


def rename_display(old: str, new: str) -> str:
    """`old => new` as `git diff --stat` shows a rename: `dir/{a.py => b.py}` when they share directories."""
    len_a, len_b = len(old), len(new)
    a, b = old + "\0", new + "\0"  # git compares the terminators too
    prefix = 0
    i = 0
    while i < len_a and i < len_b and a[i] == b[i]:
        if a[i] == "/":
            prefix = i + 1
        i += 1
    suffix = 0
    adjust = 1 if prefix else 0
    i, j = len_a, len_b
    while prefix - adjust <= i and prefix - adjust <= j and a[i] == b[j]:
        if a[i] == "/":
            suffix = len_a - i
        i -= 1
        j -= 1
    a_mid = max(0, len_a - prefix - suffix)
    b_mid = max(0, len_b - prefix - suffix)
    middle = f"{old[prefix:prefix + a_mid]} => {new[prefix:prefix + b_mid]}"
    if prefix + suffix:
        return f"{old[:prefix]}{{{middle}}}{old[len_a - suffix:]}"
    return middle


def diffstat_of(diff: dict[str, Any]) -> dict[str, Any]:
    """The diff's files in the shape `render.diffstat_lines` draws (renames as git shows them)."""
    files = []
    for file in diff.get("files") or []:
        path = str(file["path"])
        if file.get("old_path") and file["old_path"] != path:
            path = rename_display(str(file["old_path"]), path)
        binary = bool(file.get("binary"))
        files.append({"path": visible(path), "binary": binary,
                      "added": None if binary else int(file.get("additions") or 0),
                      "deleted": None if binary else int(file.get("deletions") or 0)})
    return {"files": files, "added": int(diff.get("additions") or 0), "deleted": int(diff.get("deletions") or 0)}


def page(output: str) -> None:
    """Show `output` through $PAGER (default `less -R`, with LESS=FRX unless LESS is set)."""
    command = os.environ.get("PAGER")
    if command is None:
        command = DEFAULT_PAGER
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = []
    if not argv or argv == ["cat"] or shutil.which(argv[0]) is None:
        sys.stdout.write(output)
        sys.stdout.flush()
        return
    env = dict(os.environ)
    env.setdefault("LESS", DEFAULT_LESS)
    pager = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env)
    # Ctrl-C belongs to the pager (less uses it to stop a search); we wait for it to quit.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert pager.stdin is not None
        try:
            pager.stdin.write(output.encode("utf-8", errors="replace"))
            pager.stdin.close()
        except BrokenPipeError:  # the person quit before reading it all
            pass
        pager.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def diff(client: Client, attempt_id: str, stat: bool, as_json: bool, use_pager: bool) -> int:
    if as_json:
        _print_json(client.get(attempt_path(attempt_id, "diffstat" if stat else "diff")))
        return EXIT_OK
    from kilod_cli.render import make_console

    console = make_console()
    if stat:
        from kilod_cli.render import diffstat_lines, print_lines

        print_lines(console, diffstat_lines(diffstat_of(client.get(attempt_path(attempt_id, "diff")))))
        return EXIT_OK
    if not console.is_terminal:
        # exactly the daemon's unified diff: for patch, git apply, a file
        raw, _ = client.get_bytes(attempt_path(attempt_id, "diff") + "?format=text", "text/x-diff")
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        return EXIT_OK
    from kilod_cli.diffview import diff_view

    structured = client.get(attempt_path(attempt_id, "diff"))
    if not (use_pager and sys.stdout.isatty()):
        for renderable in diff_view(structured):
            console.print(renderable)
        return EXIT_OK
    with console.capture() as capture:
        for renderable in diff_view(structured):
            console.print(renderable)
    page(capture.get())
    return EXIT_OK


# -- comments ------------------------------------------------------------


def comment(client: Client, attempt_id: str, path: str, line: int, text: str, as_json: bool) -> int:
    created = client.post(attempt_path(attempt_id, "comments"), {"path": path, "line": line, "text": text})
    if as_json:
        _print_json(created)
        return EXIT_OK
    print(created["id"])
    say(f"comment {created['id']} on {visible(path)}:{line}; the agent reads it with the next follow-up "
         f"(kilod ctl followup {attempt_id} \"…\")")
    return EXIT_OK


def comment_lines(comments: list[dict[str, Any]]) -> list[str]:
    if not comments:
        return []
    ids = [f"#{c['id']}" for c in comments]
    places = [visible(f"{c['path']}:{c['line']}") for c in comments]
    id_width, place_width = max(map(len, ids)), max(map(len, places))
    lines = []
    for shown_id, place, item in zip(ids, places, comments, strict=True):
        state = "sent   " if item.get("sent_at") else "pending"
        first, *rest = visible(str(item.get("text") or "")).split("\n")
        lines.append(f"{shown_id:<{id_width}}  {place:<{place_width}}  {state}  {first}")
        indent = " " * (id_width + place_width + len(state) + 6)
        lines.extend(indent + more for more in rest)
    return lines


def list_comments(client: Client, attempt_id: str, as_json: bool) -> int:
    answer = client.get(attempt_path(attempt_id, "comments"))
    if as_json:
        _print_json(answer)
        return EXIT_OK
    comments: list[dict[str, Any]] = answer.get("comments") or []
    if not comments:
        say(f"no comments on {attempt_id}")
    for line in comment_lines(comments):
        print(line)
    return EXIT_OK


# -- landing -------------------------------------------------------------


def landing_lines(result: dict[str, Any]) -> list[tuple[str, str]]:
    """What approve did, as (key, value) lines."""
    attempt = result.get("attempt") or {}
    lines = [("approved", str(attempt.get("id", "?"))), ("commit", str(result["commit"])),
             ("branch", str(result["branch"]))]
    merge = result.get("merge")
    if merge:
        how = "fast-forward" if merge.get("fast_forward") else "merge commit"
        lines.append(("merged", f"into {merge['branch']} ({how}), now at {str(merge['head'])[:12]}"))
        updated = merge.get("worktree_updated")
        lines.append(("checkout", f"{updated} updated" if updated else "ref only: your checkout was not touched"))
    else:
        lines.append(("merged", "no (the work stays on its branch; 'kilod ctl merge' merges it into the base)"))
    discarded = [str(d) for d in result.get("discarded") or []]
    if discarded:
        lines.append(("discarded", ", ".join(discarded)))
    return lines


class NothingShown(CliError):
    """approve/merge without a tree, off a terminal and without --yes: a usage error."""

    exit_code = 2


def reviewed_tree(client: Client, attempt_id: str, merge: bool, assume_yes: bool) -> str:
    """No tree named: show what will land, then ask on a terminal (or take --yes); the tree shown."""
    shown: dict[str, Any] = client.get(attempt_path(attempt_id, "diff"))
    from kilod_cli.render import diffstat_lines  # rich only once there is something to draw
    tree = str(shown["tree"])
    say(f"{'merge' if merge else 'approve'} {attempt_id} lands exactly this (tree {tree}):")
    for line in diffstat_lines(diffstat_of(shown)):
        say(line.plain)
    for item in shown.get("left_out") or []:  # in the worktree, not in what lands
        say(f" left out: {visible(str(item.get('path')))} ({visible(str(item.get('note')))})")
    if assume_yes:
        return tree
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise NothingShown(f"name the tree you reviewed: --tree {tree} (the 'tree' of `kilod ctl diff "
                           f"{attempt_id} --json`), or --yes to land what was just shown")
    print("land it? [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise CliError(f"nothing landed; {attempt_id} is still in review")
    return tree


def land(client: Client, attempt_id: str, message: str | None, merge: bool,
         tree: str | None, assume_yes: bool = False) -> dict[str, Any] | None:
    """Approve: the daemon's answer, or None once a merge conflict has been explained on stderr.

    The daemon lands only a named tree: the one given, else the one this command shows.
    """
    body: dict[str, Any] = {"merge": merge,
                            "tree": tree if tree is not None else reviewed_tree(client, attempt_id, merge, assume_yes)}
    if message is not None:
        body["message"] = message
    try:
        result: dict[str, Any] = client.post(attempt_path(attempt_id, "approve"), body)
    except ApiError as exc:
        paths = exc.details.get("paths")
        if exc.status != 409 or not isinstance(paths, list):
            raise
        lines = [f"kilod: {exc.message}", "conflicting files:"]
        lines += [f"  {visible(str(path))}" for path in paths]
        lines.append(f"nothing was committed or moved; {attempt_id} is still in review. Send a follow-up "
                     f"(kilod ctl followup {attempt_id} \"…\"), or approve without --merge and merge its branch "
                     "yourself.")
        say("\n".join(lines))
        return None
    return result


def print_pairs(pairs: list[tuple[str, str]]) -> None:
    """`key  value` lines on stdout, the values aligned."""
    width = max((len(key) for key, _ in pairs), default=0)
    for key, value in pairs:
        print(f"{key:<{width}}  {value}")


def approve(client: Client, attempt_id: str, message: str | None, merge: bool, tree: str | None,
            as_json: bool, assume_yes: bool = False) -> int:
    result = land(client, attempt_id, message, merge, tree, assume_yes)
    if result is None:
        return EXIT_FAILURE
    if as_json:
        _print_json(result)
        return EXIT_OK
    print_pairs(landing_lines(result))
    return EXIT_OK


def discard(client: Client, attempt_id: str, as_json: bool) -> int:
    attempt = client.post(attempt_path(attempt_id, "discard"))
    if as_json:
        _print_json(attempt)
        return EXIT_OK
    print(f"{attempt['id']} {attempt['state']}")
    say(f"removed {attempt_id}'s container, worktree and branch")
    return EXIT_OK


def cancel(client: Client, attempt_id: str, as_json: bool) -> int:
    attempt = client.post(attempt_path(attempt_id, "cancel"))
    if as_json:
        _print_json(attempt)
        return EXIT_OK
    print(f"{attempt['id']} {attempt['state']}")
    return EXIT_OK


def retry(client: Client, attempt_id: str, as_json: bool) -> int:
    attempt = client.post(attempt_path(attempt_id, "retry"))
    if as_json:
        _print_json(attempt)
        return EXIT_OK
    print(attempt["id"])
    say(f"retrying {attempt_id} as {attempt['id']} ({attempt['model']}, {attempt['state']})")
    return EXIT_OK


def follow_up(client: Client, attempt_id: str, text: str) -> dict[str, Any]:
    attempt: dict[str, Any] = client.post(attempt_path(attempt_id, "messages"), {"text": text})
    return attempt
