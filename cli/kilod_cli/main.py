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
from kilod_cli.client import RESTING_STATES, Client, CliError, segment

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
SHUTDOWN_WAIT_SECONDS = 30.0
STALE_SOCKET_SECONDS = 5.0
# Attempt ids are `<card id>-<n>`; card ids never contain a dash.
ATTEMPT_ID = re.compile(r"^[^-/\s]+-\d+$")
# Kept here, not imported from images.py, so that building the parser loads nothing extra.
IMAGE_TARGETS = ("sandbox", "daemon")

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

    return serve_main()


def cmd_doctor(args: argparse.Namespace) -> int:
    from kilod_cli.doctor import doctor

    return doctor(client_for(args), args.json)


def cmd_images_build(args: argparse.Namespace) -> int:
    from kilod_cli.images import run_build

    return run_build(list(dict.fromkeys(args.targets)) or ["sandbox"])


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
    card = client_for(args).post("/v1/cards", body)
    if args.json:
        print_json(card)
        return EXIT_OK
    attempts = card.get("attempts") or []
    print(card["id"])
    for attempt in attempts:
        print(attempt["id"])
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


def attempt_events(client: Client, attempt_id: str, follow: bool) -> Iterator[dict[str, Any]]:
    """The attempt's events; with `follow`, live ones too until it comes to rest.

    The history is read as JSON first: only its last state event says whether the
    attempt rests now (a `review` early in the log may have been followed by more work).
    """
    path = f"/v1/attempts/{segment(attempt_id)}/events"
    history: list[dict[str, Any]] = client.get(path)["events"]
    yield from history
    if not follow:
        return
    states = [state for state in map(_state_of, history) if state is not None]
    if states and states[-1] in RESTING_STATES:
        return
    last_seq = max((int(e["seq"]) for e in history), default=0)
    for event in client.stream(path, last_event_id=last_seq):
        yield event
        if _state_of(event) in RESTING_STATES:
            return
    raise CliError(f"the event stream ended before attempt {attempt_id} came to rest (did the daemon stop?)")


def cmd_logs(args: argparse.Namespace) -> int:
    client = client_for(args)
    events = attempt_events(client, args.attempt, args.follow)
    try:
        if args.json:
            for event in events:
                print(json.dumps(event), flush=args.follow)
            return EXIT_OK
        from kilod_cli.render import event_text, make_console

        console = make_console()
        for event in events:
            console.print(event_text(event), soft_wrap=True)
            if args.follow:
                console.file.flush()
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


# -- parser --------------------------------------------------------------


def image_target(value: str) -> str:
    # a type, not `choices`: argparse rejects an empty `nargs="*"` list against choices
    if value not in IMAGE_TARGETS:
        raise argparse.ArgumentTypeError(f"unknown image '{value}' (known: {', '.join(IMAGE_TARGETS)})")
    return value


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
    serve.set_defaults(handler=cmd_serve)

    demo = verbs.add_parser("demo", parents=[common], help="three scripted agents on a sample repo",
                            description="Build the sandbox image, start a daemon if needed, and run three "
                                        "scripted agents on a sample repository. The daemon keeps running.")
    demo.set_defaults(handler=cmd_demo)

    doctor = verbs.add_parser("doctor", parents=[common], help="check Docker, the image, git, disk, daemon")
    _json_option(doctor)
    doctor.set_defaults(handler=cmd_doctor)

    images = verbs.add_parser("images", help="sandbox and daemon images")
    image_verbs = images.add_subparsers(dest="images_command", metavar="VERB", required=True)
    build = image_verbs.add_parser("build", help="build images (cheap when up to date)",
                                   description="Build kilod's images with images/build.sh.")
    build.add_argument("targets", nargs="*", type=image_target, metavar="IMAGE",
                       help="sandbox (default) and/or daemon")
    build.set_defaults(handler=cmd_images_build)

    ctl = verbs.add_parser("ctl", help="talk to the running daemon",
                           description="Cards, attempts and the board, through the daemon's API.")
    ctl_verbs = ctl.add_subparsers(dest="ctl_command", metavar="VERB", required=True)

    new = ctl_verbs.add_parser("new", parents=[common], help="create a card (one attempt per model)")
    new.add_argument("prompt", help="what the agents should do")
    new.add_argument("--repo", default=".", help="the git repository (default: the current directory)")
    new.add_argument("--title", help="card title (default: the prompt's first line)")
    new.add_argument("--base", help="ref the attempts start from (default: HEAD)")
    new.add_argument("-m", "--model", dest="models", action="append", metavar="MODEL",
                     help="litellm model name; repeat for several attempts side by side")
    new.add_argument("--network", action=argparse.BooleanOptionalAction, default=None,
                     help="give the sandboxes network access (default: the daemon's setting)")
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
