"""`kilod ctl trust REPO`: show the files that configure a repository's sandbox and trust that exact content.

Settings in a repository's own files that widen a sandbox (network, copy, setup, image …)
apply only once a person trusted their content hash for that repository. The files are
`.kilod.toml`, the devcontainer file and any Dockerfile either names, and what those
Dockerfiles COPY or ADD from their build context, all as committed at a base (default
HEAD; a card reads its base commit, the bytes its image is built from), hashed together:
a change to any of them needs a new trust. This verb shows every file's content (escape
sequences made visible: a file may come from an agent, and must not be able to hide a
line from the person reading it), then asks; the daemon trusts only the hash that was
shown, so a set that changed in between is refused.
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
        "trust", help="show a repository's sandbox files (.kilod.toml, devcontainer, Dockerfiles) and trust them",
        description="Show the files that configure the repository's sandbox (.kilod.toml, "
                    ".devcontainer/devcontainer.json or .devcontainer.json, and any Dockerfile they name) and "
                    "trust this exact content (one sha256 over all of them) for the repository. Until then, "
                    "settings in them that widen the sandbox (network, copy, setup, image, devcontainer build, "
                    "containerEnv, postCreateCommand, …) are not applied to new cards. Changing any of the "
                    "files needs a new trust.")
    parser.add_argument("repo", nargs="?", default=".", help="the git repository (default: the current directory)")
    parser.add_argument("--socket", metavar="PATH", default=argparse.SUPPRESS,
                        help="the daemon's unix socket (default: $KILOD_SOCKET or <data dir>/kilod.sock)")
    parser.add_argument("--base", metavar="REF", default="HEAD",
                        help="the branch or commit whose files to show and trust (default HEAD; cards on "
                             "another base read that base's files)")
    parser.add_argument("-y", "--yes", action="store_true", help="trust what is shown without asking")
    parser.add_argument("--revoke", action="store_true",
                        help="forget every trust given to this repository's sandbox files")
    parser.add_argument("--json", action="store_true", help="print the daemon's answer as JSON (needs --yes to trust)")
    parser.set_defaults(handler=run)
    return parser


def show(view: dict[str, Any]) -> None:
    """Each file as it is, what it would change, and where trust stands; all on stderr but the contents."""
    for file in view.get("files") or []:
        if not file["exists"]:
            continue
        print(f"{visible(str(file['path']))}  sha256 {file['sha256']}", file=sys.stderr)
        print("-" * 60, file=sys.stderr, flush=True)
        content = file.get("content")
        sys.stdout.write(visible(content) if content is not None else "(content not readable)\n")
        if content and not content.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
        print("-" * 60, file=sys.stderr)
        if file.get("error"):
            print(f"error: {visible(str(file['error']))}", file=sys.stderr)
    for item in view.get("inputs") or []:   # copied into the image from the build context: covered by id
        print(f"copied into the image: {visible(str(item['path']))}  git object {item['id'] or '(absent)'}",
              file=sys.stderr)
    print(f"all of the above together (at commit {str(view.get('base', ''))[:12]}): sha256 {view['sha256']}",
          file=sys.stderr)
    if view.get("error") and view["error"] not in {f.get("error") for f in view.get("files") or []}:
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
    query = f"/v1/repos/trust?repo={quote(repo, safe='')}&base={quote(args.base, safe='')}"
    if args.revoke:
        result = client.request("DELETE", query)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"{repo}: no content of its sandbox files is trusted any more", file=sys.stderr)
        return EXIT_OK
    view: dict[str, Any] = client.get(query)
    if not view["exists"]:
        if args.json:
            print(json.dumps(view, indent=2))
            return EXIT_OK
        print(f"{repo} has no .kilod.toml and no devcontainer: nothing to trust (cards use the safe defaults)",
              file=sys.stderr)
        return EXIT_OK
    if view["trusted"]:
        if args.json:
            print(json.dumps(view, indent=2))
        else:
            print(f"{', '.join(visible(str(f['path'])) for f in view['files'] if f['exists'])} "
                  f"(sha256 {view['sha256']} together) already trusted", file=sys.stderr)
        return EXIT_OK
    if args.json and not args.yes:
        print(json.dumps(view, indent=2))  # the content and hash, for a script to show and decide
        return EXIT_OK
    if not args.json:
        show(view)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("not a terminal to ask on: read the files above, then pass --yes to trust them")
        if not ask(f"Trust these files' content for {repo}?"):
            print("not trusted", file=sys.stderr)
            return EXIT_FAILURE
    # the hash of what was shown: if the file changed meanwhile the daemon refuses (409)
    trusted = client.post("/v1/repos/trust", {"repo": repo, "sha256": view["sha256"],
                                              "base": view.get("base") or args.base})
    if args.json:
        print(json.dumps(trusted, indent=2))
    else:
        shown = ", ".join(visible(str(f["path"])) for f in trusted["files"] if f["exists"])
        print(f"trusted {shown} (sha256 {trusted['sha256']} together) for {repo}; "
              "new cards apply their settings", file=sys.stderr)
    return EXIT_OK
