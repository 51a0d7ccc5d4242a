"""`kilod ctl trust REPO`: show a repository's `.kilod.toml` and trust that exact content.

Settings in a repository's own file that widen a sandbox (network, copy, setup, image …)
apply only once a person trusted the file's content hash for that repository. This verb
shows the content (escape sequences made visible: the file may come from an agent, and
must not be able to hide a line from the person reading it), then asks; the daemon
trusts only the hash that was shown, so a file that changed in between is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kilod.paths import socket_path
from kilod_cli.client import Client, CliError
from kilod_cli.text import visible

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `trust` verb to `kilod ctl`'s subparsers (call it from the ctl parser's setup)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "trust", help="show a repository's .kilod.toml and trust its settings",
        description="Show the repository's .kilod.toml and trust this exact content (by its sha256) for the "
                    "repository. Until then, settings in it that widen the sandbox (network, copy, setup, "
                    "image, …) are not applied to new cards. Changing the file needs a new trust.")
    parser.add_argument("repo", nargs="?", default=".", help="the git repository (default: the current directory)")
    parser.add_argument("--socket", metavar="PATH", default=argparse.SUPPRESS,
                        help="the daemon's unix socket (default: $KILOD_SOCKET or <data dir>/kilod.sock)")
    parser.add_argument("-y", "--yes", action="store_true", help="trust what is shown without asking")
    parser.add_argument("--revoke", action="store_true", help="forget every trust given to this repository's file")
    parser.add_argument("--json", action="store_true", help="print the daemon's answer as JSON (needs --yes to trust)")
    parser.set_defaults(handler=run)
    return parser


def show(view: dict[str, Any]) -> None:
    """The file as it is, what it would change, and where trust stands; all on stderr but the content."""
    print(f"{visible(str(view['file']))}  sha256 {view['sha256']}", file=sys.stderr)
    print("-" * 60, file=sys.stderr)
    content = view.get("content")
    sys.stdout.write(visible(content) if content is not None else "(content not readable)\n")
    if content and not content.endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()
    print("-" * 60, file=sys.stderr)
    if view.get("error"):
        print(f"error: {visible(str(view['error']))}", file=sys.stderr)
    widening = view.get("widening") or []
    if widening:
        print(f"widens the sandbox: {', '.join(widening)}", file=sys.stderr)
    else:
        print("sets nothing that widens the sandbox", file=sys.stderr)


def ask(question: str) -> bool:
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    socket = getattr(args, "socket", None)
    client = Client(Path(socket) if socket else socket_path())
    repo = str(Path(args.repo).expanduser().resolve())
    query = f"/v1/repos/trust?repo={quote(repo, safe='')}"
    if args.revoke:
        result = client.request("DELETE", query)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"{repo}: no content of {visible(str(result['file']))} is trusted any more", file=sys.stderr)
        return EXIT_OK
    view: dict[str, Any] = client.get(query)
    if not view["exists"]:
        if args.json:
            print(json.dumps(view, indent=2))
            return EXIT_OK
        print(f"{repo} has no .kilod.toml: nothing to trust (cards use the safe defaults)", file=sys.stderr)
        return EXIT_OK
    if view["trusted"]:
        if args.json:
            print(json.dumps(view, indent=2))
        else:
            print(f"{visible(str(view['file']))} (sha256 {view['sha256']}) is already trusted", file=sys.stderr)
        return EXIT_OK
    if args.json and not args.yes:
        print(json.dumps(view, indent=2))  # the content and hash, for a script to show and decide
        return EXIT_OK
    if not args.json:
        show(view)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("not a terminal to ask on: read the file above, then pass --yes to trust it")
        if not ask(f"Trust this content for {repo}?"):
            print("not trusted", file=sys.stderr)
            return EXIT_FAILURE
    # the hash of what was shown: if the file changed meanwhile the daemon refuses (409)
    trusted = client.post("/v1/repos/trust", {"repo": repo, "sha256": view["sha256"]})
    if args.json:
        print(json.dumps(trusted, indent=2))
    else:
        print(f"trusted {visible(str(trusted['file']))} (sha256 {trusted['sha256']}) for {repo}; "
              "new cards apply its settings", file=sys.stderr)
    return EXIT_OK
