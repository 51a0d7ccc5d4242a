"""`kilod images build|list|prune`: run images/build.sh; ask the daemon what it built and prune it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kilod
from kilod.paths import socket_path
from kilod_cli.client import Client, CliError

IMAGE_TARGETS = ("sandbox", "daemon", "proxy", "dind")
EXIT_INTERRUPTED = 130


def build_script() -> Path:
    """The script in a wheel (`kilod/_images/`) or, for an editable install, in the repository."""
    package = Path(kilod.__file__).resolve().parent
    candidates = (package / "_images" / "build.sh", package.parents[1] / "images" / "build.sh")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CliError("the image build script is missing (looked for "
                   + " and ".join(str(c) for c in candidates) + "); reinstall kilod")


def run_build(targets: list[str]) -> int:
    """Run the build script; its progress goes straight to stderr. Returns its exit code."""
    script = build_script()
    try:
        return subprocess.call(["bash", str(script), *targets])
    except FileNotFoundError:
        raise CliError("bash is not on PATH; it is needed to run " + str(script)) from None
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _client(args: argparse.Namespace) -> Client:
    return Client(Path(args.socket) if getattr(args, "socket", None) else socket_path())


def _size(size: int) -> str:
    return f"{size / 1024**2:.0f} MiB" if size < 1024**3 else f"{size / 1024**3:.1f} GiB"


def cmd_list(args: argparse.Namespace) -> int:
    """Images kilod built: the repositories' sandbox images and images/build.sh's."""
    listing: dict[str, Any] = _client(args).get("/v1/images")
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    images = listing.get("images") or []
    if not images:
        print("kilod has built no images yet (`kilod images build`)", file=sys.stderr)
    for image in images:
        name = image["tags"][0] if image["tags"] else image["id"][:19]
        print(f"{name:<40}  {image['kind']:<10}  {_size(int(image['size_bytes'])):>9}  {image['repo']}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Remove the repositories' images no container uses (images/build.sh's stay)."""
    result: dict[str, Any] = _client(args).request("DELETE", "/v1/images")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    removed, in_use = result.get("removed") or [], result.get("in_use") or []
    print(f"removed {len(removed)} image{'s' if len(removed) != 1 else ''}"
          + (": " + ", ".join(removed) if removed else ""), file=sys.stderr)
    if in_use:
        print(f"kept {len(in_use)} in use by an attempt's container: {', '.join(in_use)}", file=sys.stderr)
    return 0
