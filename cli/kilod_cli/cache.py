"""`kilod cache list|clear`: the daemon's per-repository dependency cache volumes.

The daemon owns the volumes (and Docker); this module only asks it over the API.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kilod.paths import socket_path
from kilod_cli.client import Client

EXIT_OK = 0


def human_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _client(args: argparse.Namespace) -> Client:
    return Client(Path(args.socket) if getattr(args, "socket", None) else socket_path())


def cmd_list(args: argparse.Namespace) -> int:
    listing: dict[str, Any] = _client(args).get("/v1/caches")
    if args.json:
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    caches = listing.get("caches") or []
    if not caches:
        print("no cache volumes yet (they are made by a repository's first attempt)", file=sys.stderr)
        return EXIT_OK
    repo_width = max(len(str(c["repo"])) for c in caches)
    for cache in caches:
        label = cache["tool"] if cache["tool"] != "path" else cache["path"]
        used = " (in use)" if cache.get("in_use") else ""
        print(f"{cache['repo']:<{repo_width}}  {cache['image_family']:<20}  {label:<20}  "
              f"{human_bytes(cache.get('size_bytes')):>10}{used}")
    print(f"{len(caches)} volumes, {human_bytes(listing.get('total_bytes'))} in all", file=sys.stderr)
    return EXIT_OK


def cmd_clear(args: argparse.Namespace) -> int:
    path = "/v1/caches"
    if args.repo is not None:
        path += "?repo=" + quote(str(Path(args.repo).expanduser().resolve()), safe="")
    result: dict[str, Any] = _client(args).request("DELETE", path)
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    removed, in_use = result.get("removed") or [], result.get("in_use") or []
    print(f"removed {len(removed)} cache volume{'s' if len(removed) != 1 else ''}", file=sys.stderr)
    if in_use:
        print(f"kept {len(in_use)} in use by an attempt's container (discard or gc it first): "
              + ", ".join(in_use), file=sys.stderr)
    return EXIT_OK


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add `cache` to the `kilod` parser's verbs."""
    cache: argparse.ArgumentParser = subparsers.add_parser(
        "cache", help="dependency cache volumes (pip, npm, cargo, go, maven, gradle, uv)",
        description="Each repository's attempts share named volumes at the usual cache paths, "
                    "so the second attempt's setup finds what the first downloaded.")
    verbs = cache.add_subparsers(dest="cache_command", metavar="VERB", required=True)
    listing = verbs.add_parser("list", parents=[common], help="cache volumes with their repository and size")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(handler=cmd_list)
    clear = verbs.add_parser("clear", parents=[common], help="remove cache volumes no container is using")
    clear.add_argument("--repo", help="only this repository's caches")
    clear.add_argument("--json", action="store_true", help="print JSON instead of text")
    clear.set_defaults(handler=cmd_clear)
    return cache
