"""`kilod`: parse the command line, call the daemon, print, and exit with a code that says how it went.

Exit codes: 0 success, 1 failure (the daemon's 4xx/5xx included), 2 usage, 3 daemon not running.
Data goes to stdout, messages to stderr. Heavy modules load only in the verbs that need them.

This module only builds the top-level parser and dispatches: each verb group registers its
own subparsers and handlers (`register(verbs, common)`), as `service.py` and `web.py` do.
"""

from __future__ import annotations

import argparse
import os
import sys

from kilod import __version__
from kilod_cli import agents as agents_verb
from kilod_cli import cache as cache_verb
from kilod_cli import completion, ctl_cards, ctl_daemon, ctl_desk, ctl_logs, ctl_shelf, host_verbs
from kilod_cli import disk as disk_verb
from kilod_cli import service as service_verb
from kilod_cli import trust as trust_verb
from kilod_cli import web as web_verb
from kilod_cli.client import CliError
from kilod_cli.text import visible
from kilod_cli.verbs import EXIT_FAILURE, EXIT_INTERRUPTED, Handler, add_socket_option


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kilod",
        description="Run AI coding agents in parallel, each in its own git worktree and Docker sandbox.",
        epilog="exit codes: 0 ok, 1 failure, 2 usage error, 3 daemon not running",
    )
    parser.add_argument("--version", action="version", version=f"kilod {__version__}")
    add_socket_option(parser, None)
    # Subcommands accept --socket too; SUPPRESS keeps a value given before the verb.
    common = argparse.ArgumentParser(add_help=False)
    add_socket_option(common, argparse.SUPPRESS)

    verbs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    host_verbs.register(verbs, common)
    service_verb.add_parser(verbs)
    agents_verb.add_parser(verbs)
    cache_verb.add_parser(verbs, common)

    ctl = verbs.add_parser(
        "ctl", help="talk to the running daemon",
        description="Cards, attempts and the board, through the daemon's API. The review desk: read an "
                    "attempt's diff, comment on its lines, send a follow-up, open a shell or an editor on its "
                    "worktree, then approve (and merge) it or discard it. Several attempts at one card: compare "
                    "them side by side, then pick one.",
        epilog="exit codes: 0 ok, 1 failure (the daemon's message on stderr), 2 usage error, 3 daemon not running")
    ctl_verbs = ctl.add_subparsers(dest="ctl_command", metavar="VERB", required=True)
    ctl_cards.register(ctl_verbs, common)
    ctl_logs.register(ctl_verbs, common)
    ctl_desk.register(ctl_verbs, common)
    ctl_shelf.register(ctl_verbs, common)
    web_verb.add_parser(ctl_verbs)
    trust_verb.add_parser(ctl_verbs)
    ctl_daemon.register(ctl_verbs, common)
    disk_verb.add_gc_parser(ctl_verbs, common)
    completion.register(verbs, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CliError as exc:
        # the daemon's messages may quote what an agent or a person typed: shown, never obeyed
        print(f"kilod: {visible(exc.message)}", file=sys.stderr)
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
