"""`kilod ctl web`: a one-time login link to the web board, printed and opened in the browser.

The link comes from the daemon over its unix socket (only its user can ask), works once
and expires after five minutes; it logs the browser in with a session cookie.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from kilod.paths import socket_path
from kilod_cli.client import Client

EXIT_OK = 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `web` verb to `kilod ctl`'s subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "web", help="open the web board (prints a one-time login URL)",
        description="Ask the daemon for a one-time login URL for its web board, print it and open it in the "
                    "browser. The daemon must serve the board: `kilod serve --http 127.0.0.1:8765`.")
    parser.add_argument("--socket", metavar="PATH", default=argparse.SUPPRESS,
                        help="the daemon's unix socket (default: $KILOD_SOCKET or <data dir>/kilod.sock)")
    parser.add_argument("--no-open", dest="open", action="store_false", help="print the URL only")
    parser.add_argument("--token", dest="show_token", action="store_true",
                        help="also print the API token (for 'Authorization: Bearer …' in scripts)")
    parser.set_defaults(handler=run)
    return parser


def can_open_browser() -> bool:
    """False on a Linux console without a display, where webbrowser would start a text browser."""
    if os.environ.get("BROWSER"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def run(args: argparse.Namespace) -> int:
    socket = getattr(args, "socket", None)
    client = Client(Path(socket) if socket else socket_path())
    login: dict[str, Any] = client.post("/v1/web/login")
    print(login["url"], flush=True)
    if getattr(args, "show_token", False):
        print(login["token"], flush=True)
    minutes = round(float(login.get("expires_in", 300)) / 60)
    print(f"this link logs a browser in once, within {minutes} minutes; the board is at {login['origin']}/",
          file=sys.stderr)
    if login.get("token_file") and not getattr(args, "show_token", False):
        print(f"scripts: send 'Authorization: Bearer <token>', the token is in {login['token_file']}",
              file=sys.stderr)
    if getattr(args, "open", True):
        opened = False
        if can_open_browser():
            import webbrowser

            opened = webbrowser.open(login["url"])
        if not opened:
            print("no browser to open here; open the link above yourself", file=sys.stderr)
    return EXIT_OK
