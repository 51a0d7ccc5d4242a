"""What every verb module shares: exit codes, the argument types, the common options, the client.

Each verb group (`ctl_cards`, `ctl_desk`, `host_verbs`, ...) has a `register(verbs, common)`
that adds its subparsers to `verbs` (an `add_subparsers()` result) and sets each one's
`handler`; `common` is the parent parser that gives every verb `--socket`. Standard
library only: building the parser must load nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from kilod.paths import socket_path
from kilod_cli.client import Client

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# Attempt ids are `<card id>-<n>`; card ids never contain a dash.
ATTEMPT_ID = re.compile(r"^[^-/\s]+-\d+$")
# Attempts per model on one card (the daemon's NewCard.repeat).
MIN_REPEAT, MAX_REPEAT = 1, 8

Handler = Callable[[argparse.Namespace], int]


class Subparsers(Protocol):
    """What `ArgumentParser.add_subparsers()` returns (argparse keeps its class private)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def client_for(args: argparse.Namespace) -> Client:
    socket = getattr(args, "socket", None)
    return Client(Path(socket) if socket else socket_path())


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


# -- argument types ------------------------------------------------------


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


# -- options more than one verb takes ------------------------------------


def add_attempt_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attempt", metavar="ATTEMPT", type=attempt_id, help="an attempt id, like 3fa9c2d1-1")


def add_socket_option(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--socket", metavar="PATH", default=default,
                        help="the daemon's unix socket (default: $KILOD_SOCKET or <data dir>/kilod.sock)")


def add_json_option(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup,
                    what: str = "print JSON instead of text") -> None:
    parser.add_argument("--json", action="store_true", help=what)
