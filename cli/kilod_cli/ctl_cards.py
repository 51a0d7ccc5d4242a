"""`kilod ctl new | board | show`: create cards, see the board, look at one card or attempt."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from kilod_cli.boardfilter import CardFilter
from kilod_cli.client import ChangeFeed, Client, CliError, segment
from kilod_cli.text import visible
from kilod_cli.verbs import (
    ATTEMPT_ID,
    EXIT_OK,
    EXIT_USAGE,
    MAX_REPEAT,
    MIN_REPEAT,
    Subparsers,
    add_json_option,
    client_for,
    positive_int,
    positive_usd,
    print_json,
    repeat_count,
)


def cmd_new(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"prompt": args.prompt, "repo": str(Path(args.repo).expanduser().resolve())}
    if args.title is not None:
        body["title"] = args.title
    if args.base is not None:
        body["base"] = args.base
    if args.models:
        body["models"] = args.models
    if args.agents:
        body["agents"] = args.agents
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
    print(visible(str(card["id"])))
    for attempt in attempts:
        print(visible(f"{attempt['id']}  {attempt['model']}"))
    models = visible(", ".join(str(a["model"]) for a in attempts))
    print(f"created card {visible(str(card['id']))} ({visible(repr(card['title']))}) with {len(attempts)} "
          f"attempt{'s' if len(attempts) != 1 else ''}: {models}", file=sys.stderr)
    return EXIT_OK


class UsageError(CliError):
    """Input only the daemon can judge (a state it does not have): a usage error, exit 2."""

    exit_code = EXIT_USAGE


def board_filter(args: argparse.Namespace, client: Client) -> CardFilter:
    states = tuple(args.states or ())
    if states:
        known = client.meta().states  # asked only when a state is named
        unknown = [state for state in states if state not in known]
        if unknown:
            raise UsageError(f"no state named {', '.join(map(repr, unknown))} (the daemon's states: "
                             f"{', '.join(known)})")
    return CardFilter(repos=tuple(args.repos or ()), models=tuple(args.models or ()), states=states,
                      text=args.text)


def cmd_board(args: argparse.Namespace) -> int:
    client = client_for(args)
    cards = board_filter(args, client)
    if args.json:
        print_json(cards.apply(client.get("/v1/board")))
        return EXIT_OK
    if args.watch:
        return watch(client, cards)
    # drawn without rich: a blink for a board of a thousand cards is mostly not importing it
    from kilod_cli.boardtext import Screen, board_lines, per_column_for, to_ansi, write

    screen = Screen.of(sys.stdout)
    if not args.all:
        # unfiltered, only the newest cards that can fit are fetched; the daemon counts the rest
        path = "/v1/board" if cards else f"/v1/board?per_column={per_column_for(screen.height)}"
        write(board_lines(cards.apply(client.get(path)), screen.width, screen.height), screen)
        return EXIT_OK
    lines = board_lines(cards.apply(client.get("/v1/board")), screen.width)
    if not screen.terminal:
        write(lines, screen)
        return EXIT_OK
    from kilod_cli.desk import page

    page(to_ansi(lines, screen.color))
    return EXIT_OK


def watch(client: Client, cards: CardFilter) -> int:
    """`ctl board --watch`: redrawn live (rich's Live) until Ctrl-C, fitted to the terminal."""
    from kilod_cli.boardtext import per_column_for
    from kilod_cli.boardview import board_height, watch_board
    from kilod_cli.render import make_console

    console = make_console()

    def fitted() -> dict[str, Any]:
        path = "/v1/board" if cards else f"/v1/board?per_column={per_column_for(board_height(console))}"
        return cards.apply(client.get(path))

    feed = ChangeFeed.start(client)  # before the first fetch: nothing after it goes unseen
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch ends
            watch_board(console, fitted, changes=feed)
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


def register(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    new = verbs.add_parser("new", parents=[common], help="create a card (one attempt per model)")
    new.add_argument("prompt", help="what the agents should do")
    new.add_argument("--repo", default=".", help="the git repository (default: the current directory)")
    new.add_argument("--title", help="card title (default: the prompt's first line)")
    new.add_argument("--base", help="ref the attempts start from (default: HEAD)")
    new.add_argument("-m", "--model", dest="models", action="append", metavar="MODEL",
                     help="litellm model name, or AGENT:MODEL; repeat for several attempts side by side")
    new.add_argument("-a", "--agent", dest="agents", action="append", metavar="AGENT",
                     help="builtin (default), claude-code, codex, aider or mini-swe-agent; repeat to run "
                          "each agent with each model (`kilod agents list`)")
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
    add_json_option(new, "print the created card as JSON")
    new.set_defaults(handler=cmd_new)

    board = verbs.add_parser(
        "board", parents=[common], help="the kanban board (what fits the terminal; --all for every card)",
        description="The columns with their card counts, newest cards first, as many as fit the terminal (piped: "
                    "$LINES or 50 lines); each column ends with '+N more' when cards are left out. Filters of "
                    "different kinds all apply; one given twice matches either value.")
    # --watch draws the board for people; a stream of changes for programs is GET /v1/events
    output = board.add_mutually_exclusive_group()
    add_json_option(output, "print the daemon's board as JSON (filtered, never cut)")
    output.add_argument("--watch", action="store_true",
                        help="redraw live until Ctrl-C, fitted to the terminal; waits through daemon restarts")
    output.add_argument("--all", action="store_true", help="every card (through $PAGER on a terminal)")
    board.add_argument("--repo", dest="repos", action="append", metavar="PATH",
                       help="only cards on this repository (a path, or its folder name); repeatable")
    board.add_argument("-m", "--model", dest="models", action="append", metavar="MODEL",
                       help="only cards with an attempt whose model name contains MODEL; repeatable")
    board.add_argument("--state", dest="states", action="append", metavar="STATE",
                       help="only cards with an attempt in this state (review, failed, ...); repeatable")
    board.add_argument("--text", metavar="TEXT", help="only cards whose title, prompt or id contains TEXT")
    board.set_defaults(handler=cmd_board)

    show = verbs.add_parser("show", parents=[common], help="one card (or attempt) in detail")
    show.add_argument("id", metavar="CARD_OR_ATTEMPT")
    add_json_option(show)
    show.set_defaults(handler=cmd_show)
