"""`kilod`: parse the command line, call the daemon, print, and exit with a code that says how it went.

Exit codes: 0 success, 1 failure (the daemon's 4xx/5xx included), 2 usage, 3 daemon not running.
Data goes to stdout, messages to stderr. Heavy modules load only in the verbs that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kilod import __version__
from kilod.paths import socket_path
from kilod_cli import cache as cache_verb
from kilod_cli import disk as disk_verb
from kilod_cli import service as service_verb
from kilod_cli import web as web_verb
from kilod_cli.client import RESTING_STATES, Client, CliError, segment

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
SHUTDOWN_WAIT_SECONDS = 30.0
STALE_SOCKET_SECONDS = 5.0
# Attempt ids are `<card id>-<n>`; card ids never contain a dash.
ATTEMPT_ID = re.compile(r"^[^-/\s]+-\d+$")
# Kept here, not imported from images.py, so that building the parser loads nothing extra.
IMAGE_TARGETS = ("sandbox", "daemon", "proxy")
# Attempts per model on one card (the daemon's NewCard.repeat).
MIN_REPEAT, MAX_REPEAT = 1, 8

Handler = Callable[[argparse.Namespace], int]


def client_for(args: argparse.Namespace) -> Client:
    return Client(Path(args.socket) if args.socket else socket_path())


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


# -- serve, doctor, images, demo -----------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    if args.socket:
        os.environ["KILOD_SOCKET"] = args.socket
    # The one place the CLI loads the daemon itself (aiohttp, pydantic, ...).
    from kilod.__main__ import main as serve_main

    return serve_main(["--http", args.http] if args.http else [])


def cmd_doctor(args: argparse.Namespace) -> int:
    from kilod_cli.doctor import doctor

    return doctor(client_for(args), args.json)


def cmd_images_build(args: argparse.Namespace) -> int:
    from kilod_cli.images import run_build

    return run_build(list(dict.fromkeys(args.targets)) or ["sandbox"])


def cmd_images_list(args: argparse.Namespace) -> int:
    from kilod_cli.images import cmd_list

    return cmd_list(args)


def cmd_images_prune(args: argparse.Namespace) -> int:
    from kilod_cli.images import cmd_prune

    return cmd_prune(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from kilod_cli.demo import run_demo

    return run_demo(client_for(args))


# -- ctl -----------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"prompt": args.prompt, "repo": str(Path(args.repo).expanduser().resolve())}
    if args.title is not None:
        body["title"] = args.title
    if args.base is not None:
        body["base"] = args.base
    if args.models:
        body["models"] = args.models
    if args.network is not None:
        body["network"] = args.network
    if args.allow:  # an egress allowlist: only these hosts, through kilod's proxy
        if args.network is not None:
            raise CliError("--allow names the only hosts a sandbox may reach; leave out --network/--no-network")
        body["network"] = args.allow
    if args.repeat is not None:
        body["repeat"] = args.repeat
    budget = {key: value for key, value in (("tokens", args.budget_tokens), ("cost_usd", args.budget_cost))
              if value is not None}
    if budget:
        body["budget"] = budget
    settings = {key: value for key, value in (("setup", args.setup), ("checks", args.checks), ("copy", args.copy))
                if value is not None}
    if settings:
        body["settings"] = settings
    card = client_for(args).post("/v1/cards", body)
    if args.json:
        print_json(card)
        return EXIT_OK
    attempts = card.get("attempts") or []
    print(card["id"])
    for attempt in attempts:
        print(f"{attempt['id']}  {attempt['model']}")
    models = ", ".join(str(a["model"]) for a in attempts)
    print(f"created card {card['id']} ({card['title']!r}) with {len(attempts)} "
          f"attempt{'s' if len(attempts) != 1 else ''}: {models}", file=sys.stderr)
    return EXIT_OK


def cmd_board(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.json:
        print_json(client.get("/v1/board"))
        return EXIT_OK
    from kilod_cli.render import board_view, make_console, watch_board

    console = make_console()
    if not args.watch:
        console.print(board_view(client.get("/v1/board"), console.width))
        return EXIT_OK
    from kilod_cli.client import ChangeFeed

    feed = ChangeFeed.start(client)  # before the first fetch: nothing after it goes unseen
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends
            watch_board(console, lambda: client.get("/v1/board"), changes=feed)
    finally:
        if feed is not None:
            feed.close()
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    client = client_for(args)
    if ATTEMPT_ID.match(args.id):
        attempt = client.get(f"/v1/attempts/{segment(args.id)}")
        if args.json:
            print_json(attempt)
            return EXIT_OK
        card = client.get(f"/v1/cards/{segment(str(attempt['card_id']))}")
        attempts = [attempt]
    else:
        card = client.get(f"/v1/cards/{segment(args.id)}")
        if args.json:
            print_json(card)
            return EXIT_OK
        attempts = card.get("attempts") or []
    from kilod_cli.render import card_view, make_console

    make_console().print(card_view(card, attempts))
    return EXIT_OK


def _state_of(event: dict[str, Any]) -> str | None:
    if event.get("kind") != "state":
        return None
    target = (event.get("payload") or {}).get("to")
    return str(target) if target is not None else None


def last_seq(client: Client, attempt_id: str) -> int:
    history: list[dict[str, Any]] = client.get(f"/v1/attempts/{segment(attempt_id)}/events")["events"]
    return max((int(e["seq"]) for e in history), default=0)


def attempt_events(client: Client, attempt_id: str, follow: bool, after: int = 0) -> Iterator[dict[str, Any]]:
    """The attempt's events (those after seq `after`); with `follow`, live ones too until it comes to rest.

    The history is read as JSON first: only its last state event says whether the
    attempt rests now (a `review` early in the log may have been followed by more work).
    """
    path = f"/v1/attempts/{segment(attempt_id)}/events"
    history: list[dict[str, Any]] = client.get(path + (f"?after={after}" if after else ""))["events"]
    yield from history
    if not follow:
        return
    states = [state for state in map(_state_of, history) if state is not None]
    if states and states[-1] in RESTING_STATES:
        return
    seen = max((int(e["seq"]) for e in history), default=after)
    for event in client.stream(path, last_event_id=seen):
        yield event
        if _state_of(event) in RESTING_STATES:
            return
    raise CliError(f"the event stream ended before attempt {attempt_id} came to rest (did the daemon stop?)")


def show_events(events: Iterator[dict[str, Any]], as_json: bool, follow: bool) -> str | None:
    """Print events (NDJSON or log lines); returns the last state seen, if any."""
    state: str | None = None
    if as_json:
        for event in events:
            state = _state_of(event) or state
            print(json.dumps(event), flush=follow)
        return state
    from kilod_cli.render import event_text, make_console

    console = make_console()
    for event in events:
        state = _state_of(event) or state
        console.print(event_text(event), soft_wrap=True)
        if follow:
            console.file.flush()
    return state


def cmd_logs(args: argparse.Namespace) -> int:
    client = client_for(args)
    try:
        show_events(attempt_events(client, args.attempt, args.follow), args.json, args.follow)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    status = client_for(args).get("/v1/status")
    if args.json:
        print_json(status)
        return EXIT_OK
    from kilod_cli.render import key_value_lines, make_console, print_lines

    print_lines(make_console(), key_value_lines(status))
    return EXIT_OK


def cmd_shutdown(args: argparse.Namespace) -> int:
    client = client_for(args)
    client.post("/v1/shutdown")
    print("stopping the daemon…", file=sys.stderr)
    deadline = time.monotonic() + SHUTDOWN_WAIT_SECONDS
    stopped_answering: float | None = None
    while time.monotonic() < deadline:
        if stopped_answering is None and not client.healthy():
            stopped_answering = time.monotonic()
        # The daemon removes its socket last, once the store is closed: that is "stopped".
        # A socket left behind by a daemon that died while stopping must not hold us for long.
        if stopped_answering is not None and (
            not client.socket_path.exists() or time.monotonic() - stopped_answering > STALE_SOCKET_SECONDS
        ):
            print("daemon stopped", file=sys.stderr)
            return EXIT_OK
        time.sleep(0.1)
    raise CliError(f"the daemon still answers on {client.socket_path} after {SHUTDOWN_WAIT_SECONDS:g} s")


# -- the review desk -----------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    from kilod_cli.desk import diff

    return diff(client_for(args), args.attempt, args.stat, args.json, use_pager=not args.no_pager)


def cmd_comment(args: argparse.Namespace) -> int:
    from kilod_cli.desk import comment

    path, line = args.location
    return comment(client_for(args), args.attempt, path, line, " ".join(args.text), args.json)


def cmd_comments(args: argparse.Namespace) -> int:
    from kilod_cli.desk import list_comments

    return list_comments(client_for(args), args.attempt, args.json)


def cmd_followup(args: argparse.Namespace) -> int:
    from kilod_cli.desk import follow_up

    client = client_for(args)
    # where the log stands before the follow-up: -f shows only what it sets off
    start = last_seq(client, args.attempt) if args.follow else 0
    attempt = follow_up(client, args.attempt, " ".join(args.text))
    print(f"{attempt['id']} {attempt['state']}", flush=True)
    if not args.follow:
        return EXIT_OK
    try:
        state = show_events(attempt_events(client, args.attempt, True, after=start), False, True)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if state in ("failed", "cancelled"):
        print(f"kilod: attempt {args.attempt} {state} (kilod ctl show {args.attempt})", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_shell(args: argparse.Namespace) -> int:
    from kilod_cli.desk import shell

    return shell(client_for(args), args.attempt, args.host)


def cmd_open(args: argparse.Namespace) -> int:
    from kilod_cli.desk import open_editor

    return open_editor(client_for(args), args.attempt)


def cmd_approve(args: argparse.Namespace) -> int:
    from kilod_cli.desk import approve

    return approve(client_for(args), args.attempt, args.message, args.merge, args.tree, args.json)


def cmd_compare(args: argparse.Namespace) -> int:
    from kilod_cli.compare import compare

    return compare(client_for(args), args.card, args.json, args.diff, use_pager=not args.no_pager)


def cmd_pick(args: argparse.Namespace) -> int:
    from kilod_cli.compare import pick

    return pick(client_for(args), args.attempt, args.message, args.merge, args.json)


def cmd_discard(args: argparse.Namespace) -> int:
    from kilod_cli.desk import discard

    return discard(client_for(args), args.attempt, args.json)


def cmd_cancel(args: argparse.Namespace) -> int:
    from kilod_cli.desk import cancel

    return cancel(client_for(args), args.attempt, args.json)


def cmd_retry(args: argparse.Namespace) -> int:
    from kilod_cli.desk import retry

    return retry(client_for(args), args.attempt, args.json)


# -- parser --------------------------------------------------------------


def image_target(value: str) -> str:
    # a type, not `choices`: argparse rejects an empty `nargs="*"` list against choices
    if value not in IMAGE_TARGETS:
        raise argparse.ArgumentTypeError(f"unknown image '{value}' (known: {', '.join(IMAGE_TARGETS)})")
    return value


def repeat_count(value: str) -> int:
    if not value.isdigit() or not MIN_REPEAT <= int(value) <= MAX_REPEAT:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number of attempts per model from {MIN_REPEAT} "
                                         f"to {MAX_REPEAT}")
    return int(value)


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number above 0")
    return int(value)


def positive_usd(value: str) -> float:
    try:
        amount = float(value.removeprefix("$"))
    except ValueError:
        amount = float("nan")
    if not amount > 0 or amount == float("inf"):
        raise argparse.ArgumentTypeError(f"'{value}' is not an amount of US dollars above 0 (like 0.50)")
    return amount


def attempt_id(value: str) -> str:
    if not ATTEMPT_ID.match(value):
        raise argparse.ArgumentTypeError(
            f"'{value}' is not an attempt id (like 3fa9c2d1-1); 'kilod ctl show CARD' lists a card's attempts")
    return value


def location(value: str) -> tuple[str, int]:
    """FILE:LINE, split at the last colon (a path may contain colons); the path as the diff names it."""
    path, colon, line = value.rpartition(":")
    path = path.removeprefix("./")
    if not colon or not path or not line.isdigit() or int(line) < 1:
        raise argparse.ArgumentTypeError(f"'{value}' is not FILE:LINE (a path in the diff and a line number "
                                         "from 1, like src/app.py:42)")
    return path, int(line)


def _attempt_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attempt", metavar="ATTEMPT", type=attempt_id, help="an attempt id, like 3fa9c2d1-1")


def _socket_option(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--socket", metavar="PATH", default=default,
                        help="the daemon's unix socket (default: $KILOD_SOCKET or <data dir>/kilod.sock)")


def _json_option(parser: argparse.ArgumentParser, what: str = "print JSON instead of text") -> None:
    parser.add_argument("--json", action="store_true", help=what)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kilod",
        description="Run AI coding agents in parallel, each in its own git worktree and Docker sandbox.",
        epilog="exit codes: 0 ok, 1 failure, 2 usage error, 3 daemon not running",
    )
    parser.add_argument("--version", action="version", version=f"kilod {__version__}")
    _socket_option(parser, None)
    # Subcommands accept --socket too; SUPPRESS keeps a value given before the verb.
    common = argparse.ArgumentParser(add_help=False)
    _socket_option(common, argparse.SUPPRESS)

    verbs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = verbs.add_parser("serve", parents=[common], help="run the daemon in the foreground",
                             description="Run the daemon in the foreground (settings from KILOD_* env).")
    serve.add_argument("--http", metavar="HOST:PORT",
                       help="also serve the web board and the API on TCP, e.g. 127.0.0.1:8765 (token required)")
    serve.set_defaults(handler=cmd_serve)

    demo = verbs.add_parser("demo", parents=[common], help="three scripted agents on a sample repo",
                            description="Build the sandbox image, start a daemon if needed, and run three "
                                        "scripted agents on a sample repository. The daemon keeps running.")
    demo.set_defaults(handler=cmd_demo)

    doctor = verbs.add_parser("doctor", parents=[common], help="check Docker, the image, git, disk, daemon")
    _json_option(doctor)
    doctor.set_defaults(handler=cmd_doctor)

    images = verbs.add_parser("images", help="kilod's images: build, list, prune")
    image_verbs = images.add_subparsers(dest="images_command", metavar="VERB", required=True)
    build = image_verbs.add_parser("build", help="build images (cheap when up to date)",
                                   description="Build kilod's images with images/build.sh.")
    build.add_argument("targets", nargs="*", type=image_target, metavar="IMAGE",
                       help="sandbox (default) and/or daemon")
    build.set_defaults(handler=cmd_images_build)
    for name, help_text in (("list", "images kilod built (repositories' and its own)"),
                            ("prune", "remove repositories' images no container uses")):
        verb = image_verbs.add_parser(name, parents=[common], help=help_text, description=help_text + ".")
        _json_option(verb)
        verb.set_defaults(handler=cmd_images_list if name == "list" else cmd_images_prune)

    service_verb.add_parser(verbs)
    cache_verb.add_parser(verbs, common)

    ctl = verbs.add_parser(
        "ctl", help="talk to the running daemon",
        description="Cards, attempts and the board, through the daemon's API. The review desk: read an "
                    "attempt's diff, comment on its lines, send a follow-up, open a shell or an editor on its "
                    "worktree, then approve (and merge) it or discard it. Several attempts at one card: compare "
                    "them side by side, then pick one.",
        epilog="exit codes: 0 ok, 1 failure (the daemon's message on stderr), 2 usage error, 3 daemon not running")
    ctl_verbs = ctl.add_subparsers(dest="ctl_command", metavar="VERB", required=True)

    disk_verb.add_gc_parser(ctl_verbs, common)
    new = ctl_verbs.add_parser("new", parents=[common], help="create a card (one attempt per model)")
    new.add_argument("prompt", help="what the agents should do")
    new.add_argument("--repo", default=".", help="the git repository (default: the current directory)")
    new.add_argument("--title", help="card title (default: the prompt's first line)")
    new.add_argument("--base", help="ref the attempts start from (default: HEAD)")
    new.add_argument("-m", "--model", dest="models", action="append", metavar="MODEL",
                     help="litellm model name; repeat for several attempts side by side")
    new.add_argument("-n", "--repeat", type=repeat_count, metavar="N",
                     help=f"attempts per model, {MIN_REPEAT} to {MAX_REPEAT} (best of N; default 1)")
    new.add_argument("--network", action=argparse.BooleanOptionalAction, default=None,
                     help="give the sandboxes network access (default: .kilod.toml, then the daemon's setting)")
    new.add_argument("--allow", action="append", metavar="HOST",
                     help="only this host (or *.domain) through kilod's egress proxy; repeat for several")
    new.add_argument("--budget-tokens", type=positive_int, metavar="N",
                     help="stop an attempt (it goes to review, reason shown) once its tokens in+out reach N")
    new.add_argument("--budget-cost", type=positive_usd, metavar="USD",
                     help="stop an attempt once its known cost reaches USD dollars")
    new.add_argument("--setup", action="append", metavar="CMD",
                     help="run in the sandbox before the agent; repeatable; replaces .kilod.toml's setup")
    new.add_argument("--check", dest="checks", action="append", metavar="CMD",
                     help="run in the sandbox after the agent; repeatable; replaces .kilod.toml's checks")
    new.add_argument("--copy", action="append", metavar="GLOB",
                     help="untracked files copied from the repository into each worktree; repeatable; replaces "
                          ".kilod.toml's copy")
    _json_option(new, "print the created card as JSON")
    new.set_defaults(handler=cmd_new)

    board = ctl_verbs.add_parser("board", parents=[common], help="the kanban board")
    _json_option(board)
    board.add_argument("--watch", action="store_true", help="redraw live until Ctrl-C")
    board.set_defaults(handler=cmd_board)

    show = ctl_verbs.add_parser("show", parents=[common], help="one card (or attempt) in detail")
    show.add_argument("id", metavar="CARD_OR_ATTEMPT")
    _json_option(show)
    show.set_defaults(handler=cmd_show)

    logs = ctl_verbs.add_parser("logs", parents=[common], help="an attempt's events")
    logs.add_argument("attempt", metavar="ATTEMPT")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="follow live until the attempt comes to rest (review, failed, ...)")
    _json_option(logs, "print NDJSON, one event per line")
    logs.set_defaults(handler=cmd_logs)

    diff = ctl_verbs.add_parser(
        "diff", parents=[common], help="an attempt's changes, highlighted (through a pager on a terminal)",
        description="The attempt's worktree against its base commit, untracked files included. On a terminal: "
                    "each file's header (status, renames, mode changes, risk flags), then its hunks highlighted "
                    "in the file's language, through $PAGER (default 'less -R'; LESS=FRX unless LESS is set). "
                    "Piped: the daemon's unified diff, exactly (for git apply). FORCE_COLOR forces the "
                    "highlighted view.")
    _attempt_argument(diff)
    diff.add_argument("--stat", action="store_true", help="a diffstat, like git diff --stat")
    diff.add_argument("--no-pager", action="store_true", help="print straight to the terminal")
    _json_option(diff, "print the daemon's structured diff as JSON (with --stat: its diffstat)")
    diff.set_defaults(handler=cmd_diff)

    comment = ctl_verbs.add_parser(
        "comment", parents=[common], help="comment on a line of an attempt's diff",
        description="Attach a review comment to a line of the diff (an added or unchanged line, numbered as in "
                    "the new file). The agent reads pending comments with the next follow-up.")
    _attempt_argument(comment)
    comment.add_argument("location", metavar="FILE:LINE", type=location,
                         help="a path as the diff names it, and a line number in the new file")
    comment.add_argument("text", nargs="+", metavar="TEXT", help="the comment (several words are joined)")
    _json_option(comment, "print the created comment as JSON")
    comment.set_defaults(handler=cmd_comment)

    comments = ctl_verbs.add_parser("comments", parents=[common], help="an attempt's review comments")
    _attempt_argument(comments)
    _json_option(comments)
    comments.set_defaults(handler=cmd_comments)

    followup = ctl_verbs.add_parser(
        "followup", parents=[common], help="send an attempt in review back to work with a message",
        description="The agent continues with its whole conversation, this message, the pending comments "
                    "and whatever a person changed in the worktree meanwhile. Prints the attempt id and its "
                    "state (running).")
    _attempt_argument(followup)
    followup.add_argument("text", nargs="+", metavar="TEXT", help="what to do next (several words are joined)")
    followup.add_argument("-f", "--follow", action="store_true",
                          help="then follow its log until it comes to rest; exit 1 if it fails or is cancelled")
    followup.set_defaults(handler=cmd_followup)

    shell = ctl_verbs.add_parser(
        "shell", parents=[common], help="a shell in the attempt's container (or its worktree: --host)",
        description="Starts the attempt's container if needed and runs bash (or sh) in it with docker exec, as "
                    "the sandbox user in /workspace. The exit code is the shell's.")
    _attempt_argument(shell)
    shell.add_argument("--host", action="store_true",
                       help="run $SHELL (default /bin/sh) on this machine in the worktree instead")
    shell.set_defaults(handler=cmd_shell)

    open_ = ctl_verbs.add_parser(
        "open", parents=[common], help="open the attempt's worktree in an editor",
        description="Runs $KILOD_EDITOR (default 'code --new-window {path}'; {path} is replaced by the worktree, "
                    "or the path is appended). First warns on stderr about every changed file that can run "
                    "code when the folder is opened (editor tasks, CI, build files, hooks, nested "
                    "repositories). Without the editor it prints the path and the command.")
    _attempt_argument(open_)
    open_.set_defaults(handler=cmd_open)

    approve = ctl_verbs.add_parser(
        "approve", parents=[common], help="commit the reviewed work on the attempt's branch",
        description="Commits exactly the reviewed worktree on the attempt's branch (and with --merge merges it "
                    "into the card's base branch); the card's other attempts are discarded. A merge conflict "
                    "changes nothing: the files are listed and the exit code is 1.")
    approve_merge = ctl_verbs.add_parser(
        "merge", parents=[common], help="approve and merge into the base branch (= approve --merge)",
        description="approve --merge: commit the reviewed work on the attempt's branch and merge it into the "
                    "card's base branch. A conflict changes nothing: the files are listed and the exit code is 1.")
    for parser_ in (approve, approve_merge):
        _attempt_argument(parser_)
        parser_.add_argument("-m", "--message", help="the commit message (default: the card's title, the "
                                                     "agent's summary and kilod trailers)")
        parser_.add_argument("--tree", metavar="TREE",
                             help="land only if the worktree is still this tree (the 'tree' of diff --json)")
        _json_option(parser_, "print the daemon's answer as JSON")
    approve.add_argument("--merge", action="store_true", help="also merge into the card's base branch")
    approve.set_defaults(handler=cmd_approve)
    approve_merge.set_defaults(handler=cmd_approve, merge=True)

    compare = ctl_verbs.add_parser(
        "compare", parents=[common], help="a card's attempts side by side; the best value in each column marked",
        description="One row per attempt: model, state, files changed, lines added and removed, checks, steps, "
                    "tool calls, tokens, cost, wall time, stop reason; the best value in each column marked with "
                    "a star. Then the files each attempt touched, where they overlap, and the card's totals. With "
                    "--diff FILE: that file's diff in every attempt in turn (highlighted through $PAGER on a "
                    "terminal; piped: a header line per attempt and the file's unified diff).")
    compare.add_argument("card", metavar="CARD", help="a card id, like 3fa9c2d1")
    compare.add_argument("--diff", metavar="FILE", help="show this file's diff (a path as the diff names it) for "
                                                        "every attempt")
    compare.add_argument("--no-pager", action="store_true", help="with --diff: print straight to the terminal")
    _json_option(compare, "print the daemon's comparison as JSON (with --diff: each attempt's diff of the file)")
    compare.set_defaults(handler=cmd_compare)

    pick = ctl_verbs.add_parser(
        "pick", parents=[common], help="keep this attempt: approve it and discard its siblings",
        description="Approve the attempt (commit the reviewed worktree on its branch; with --merge also merge "
                    "it into the card's base branch); the daemon discards the card's other attempts, and pick "
                    "says which. A merge conflict changes nothing: the files are listed and the exit code is 1.")
    _attempt_argument(pick)
    pick.add_argument("-m", "--message", help="the commit message (default: the card's title, the agent's "
                                              "summary and kilod trailers)")
    pick.add_argument("--merge", action="store_true", help="also merge into the card's base branch")
    _json_option(pick, "print the daemon's answer as JSON")
    pick.set_defaults(handler=cmd_pick)

    discard = ctl_verbs.add_parser("discard", parents=[common],
                                   help="drop an attempt: its container, worktree and branch")
    cancel = ctl_verbs.add_parser("cancel", parents=[common], help="stop a queued, starting or running attempt")
    retry = ctl_verbs.add_parser("retry", parents=[common],
                                 help="a new attempt with the same model; prints its id")
    for parser_, handler in ((discard, cmd_discard), (cancel, cmd_cancel), (retry, cmd_retry)):
        _attempt_argument(parser_)
        _json_option(parser_, "print the attempt as JSON")
        parser_.set_defaults(handler=handler)

    web_verb.add_parser(ctl_verbs)

    status = ctl_verbs.add_parser("status", parents=[common], help="the daemon's status")
    _json_option(status)
    status.set_defaults(handler=cmd_status)

    shutdown = ctl_verbs.add_parser("shutdown", parents=[common], help="stop the daemon")
    shutdown.set_defaults(handler=cmd_shutdown)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "watch", False) and args.json:
        parser.error("--watch draws the board for people; for a stream of changes read GET /v1/events")
    handler: Handler = args.handler
    try:
        return handler(args)
    except CliError as exc:
        print(f"kilod: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`kilod ctl logs x | head`): stop quietly, and keep Python
        # from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
