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
from collections.abc import Callable

from kilod import __version__
from kilod_cli.client import CliError
from kilod_cli.text import visible
from kilod_cli.verbs import EXIT_FAILURE, EXIT_INTERRUPTED, Handler, Subparsers, add_socket_option

# Registers one group of verbs (`register(verbs, common)`), importing its module only when called.
Group = Callable[[Subparsers, argparse.ArgumentParser], None]


def _host(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import host_verbs

    host_verbs.register(verbs, common)


def _service(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import service

    service.add_parser(verbs)


def _agents(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import agents

    agents.add_parser(verbs)


def _cache(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import cache

    cache.add_parser(verbs, common)


def _completion(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import completion

    completion.register(verbs, common)


def _cards(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import ctl_cards

    ctl_cards.register(verbs, common)


def _logs(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import ctl_logs

    ctl_logs.register(verbs, common)


def _desk(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import ctl_desk

    ctl_desk.register(verbs, common)


def _shelf(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import ctl_shelf

    ctl_shelf.register(verbs, common)


def _web(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import web

    web.add_parser(verbs)


def _trust(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import trust

    trust.add_parser(verbs)


def _daemon(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import ctl_daemon

    ctl_daemon.register(verbs, common)


def _gc(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    from kilod_cli import disk

    disk.add_gc_parser(verbs, common)


# Each verb's group, in the order `--help` lists them; `ctl` comes between cache and completion.
# A test checks these name every verb the groups register, and no other.
TOP_VERBS: dict[str, Group] = {"serve": _host, "demo": _host, "doctor": _host, "images": _host,
                               "service": _service, "agents": _agents, "cache": _cache, "completion": _completion}
CTL_VERBS: dict[str, Group] = {
    "new": _cards, "board": _cards, "show": _cards, "logs": _logs,
    **dict.fromkeys(("diff", "comment", "comments", "followup", "shell", "open", "approve", "merge", "compare",
                     "pick", "discard", "cancel", "retry"), _desk),
    **dict.fromkeys(("archive", "unarchive", "delete", "pause", "resume"), _shelf),
    "web": _web, "trust": _trust, "status": _daemon, "shutdown": _daemon, "gc": _gc,
}
HELP = ("-h", "--help")


def _named_verb(argv: list[str]) -> tuple[str | None, list[str]]:
    """The first word of `argv` that is not an option (`--socket PATH` skipped) and what follows it.

    None when a help option comes first: that level's help lists every verb.
    """
    for index, word in enumerate(argv):
        if word in HELP:
            return None, []
        if word.startswith("-"):
            continue
        if index > 0 and argv[index - 1] == "--socket":
            continue
        return word, argv[index + 1:]
    return None, []


def _unique(groups: list[Group]) -> list[Group]:
    return list(dict.fromkeys(groups))


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; given `argv` that names a verb, only that verb's group is built.

    Importing every verb module and building ~60 sub-parsers was most of a short command's
    start. A verb's own usage, help and errors are the same either way; a command line naming
    no known verb (a typo, `--help`, `ctl` alone) builds everything, so its message lists them all.
    """
    top_groups = _unique(list(TOP_VERBS.values()))
    ctl_groups = _unique(list(CTL_VERBS.values()))
    with_ctl = True
    if argv is not None:
        verb, rest = _named_verb(argv)
        if verb == "ctl":
            top_groups = []
            ctl_verb, _ = _named_verb(rest)
            if ctl_verb in CTL_VERBS:
                ctl_groups = [CTL_VERBS[ctl_verb]]
        elif verb in TOP_VERBS:
            top_groups, with_ctl = [TOP_VERBS[verb]], False
        elif verb is None and "--version" in argv and not any(word in HELP for word in argv):
            top_groups, with_ctl = [], False  # answered before any verb is looked at

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
    for group in top_groups:
        if group is not _completion:
            group(verbs, common)
    if with_ctl:
        ctl = verbs.add_parser(
            "ctl", help="talk to the running daemon",
            description="Cards, attempts and the board, through the daemon's API. The review desk: read an "
                        "attempt's diff, comment on its lines, send a follow-up, open a shell or an editor on its "
                        "worktree, then approve (and merge) it or discard it. Several attempts at one card: "
                        "compare them side by side, then pick one.",
            epilog="exit codes: 0 ok, 1 failure (the daemon's message on stderr), 2 usage error, 3 daemon not "
                   "running")
        ctl_verbs = ctl.add_subparsers(dest="ctl_command", metavar="VERB", required=True)
        for group in ctl_groups:
            group(ctl_verbs, common)
    if _completion in top_groups:
        _completion(verbs, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(words).parse_args(words)
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
