"""`kilod ctl status | shutdown`: the daemon itself."""

from __future__ import annotations

import argparse
import sys
import time

from kilod_cli.client import CliError
from kilod_cli.verbs import EXIT_OK, Subparsers, add_json_option, client_for, print_json

SHUTDOWN_WAIT_SECONDS = 30.0
STALE_SOCKET_SECONDS = 5.0


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


def register(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    status = verbs.add_parser("status", parents=[common], help="the daemon's status")
    add_json_option(status)
    status.set_defaults(handler=cmd_status)

    shutdown = verbs.add_parser("shutdown", parents=[common], help="stop the daemon")
    shutdown.set_defaults(handler=cmd_shutdown)
