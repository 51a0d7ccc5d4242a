"""Disk: `kilod ctl gc` and the disk line of `kilod doctor`, both asked of the daemon."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kilod.paths import socket_path
from kilod_cli.cache import human_bytes
from kilod_cli.client import Client


def _client(args: argparse.Namespace) -> Client:
    return Client(Path(args.socket) if getattr(args, "socket", None) else socket_path())


def cmd_gc(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {} if args.idle is None else {"idle_after": args.idle}
    report: dict[str, Any] = _client(args).post("/v1/gc", body)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    worktrees, containers = report.get("worktrees_removed") or [], report.get("containers_removed") or []
    for attempt_id in worktrees:
        print(f"{attempt_id}  worktree and branch removed (discarded)")
    for attempt_id in containers:
        print(f"{attempt_id}  container removed (idle; re-created on demand)")
    print(f"gc: {len(worktrees)} worktree{'s' if len(worktrees) != 1 else ''}, {len(containers)} "
          f"container{'s' if len(containers) != 1 else ''} removed (idle after {report.get('idle_after', 0):g} s)",
          file=sys.stderr)
    for error in report.get("errors") or []:
        print(f"kilod: gc: {error}", file=sys.stderr)
    return 1 if report.get("errors") else 0


def seconds(text: str) -> float:
    """`90`, `90s`, `15m`, `4h`, `3d` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 15m, 4h or 3d, got '{text}'") from None
    if number < 0:
        raise argparse.ArgumentTypeError("a duration cannot be negative")
    return number * unit


def add_gc_parser(ctl_verbs: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    gc: argparse.ArgumentParser = ctl_verbs.add_parser(
        "gc", parents=[common], help="remove discarded worktrees and idle containers",
        description="Remove the worktrees and branches of discarded attempts, and the containers of attempts "
                    "resting (Review, failed, cancelled) with no activity for a while; a removed container is "
                    "re-created when it is needed again (a follow-up, a shell).")
    gc.add_argument("--idle", type=seconds, metavar="DURATION",
                    help="inactivity after which a resting attempt's container goes (default: KILOD_GC_IDLE_AFTER)")
    gc.add_argument("--json", action="store_true", help="print JSON instead of text")
    gc.set_defaults(handler=cmd_gc)
    return gc


def disk_line(client: Client) -> str | None:
    """`worktrees 1.2 GiB (14), caches …, images …` from a running daemon, or None."""
    try:
        disk: dict[str, Any] = client.get("/v1/disk")
    except Exception:  # doctor reports the daemon itself elsewhere
        return None
    return (f"worktrees {human_bytes(disk.get('worktrees_bytes'))} ({disk.get('worktrees', 0)}), "
            f"caches {human_bytes(disk.get('caches_bytes'))} ({disk.get('caches', 0)} volumes), "
            f"repository images {human_bytes(disk.get('images_bytes'))} ({disk.get('images', 0)}), "
            f"kilod's own images {human_bytes(disk.get('base_images_bytes'))}")
