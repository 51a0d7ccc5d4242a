"""`kilod agents install NAME` and `kilod agents list`: real agent CLIs in the data dir.

Runs pip (and, for Python agents, a build container through docker-py in a child process,
kilod.agents.helper) itself; talks to no daemon, imports nothing heavy (kilod.agents.install
is stdlib only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kilod.agents.catalog import CATALOG
from kilod.paths import data_dir
from kilod_cli.client import CliError
from kilod_cli.verbs import Subparsers

# kilod.agents.install (zipfile, subprocess, tempfile…) is imported by the handlers only:
# building the parser must stay cheap for every other verb.


def add_parser(verbs: Subparsers) -> None:
    agents = verbs.add_parser(
        "agents", help="install agent CLIs (Claude Code, Codex, aider, mini-swe-agent)",
        description="Agent CLIs live in the data dir (never in an image) and are mounted read-only into "
                    "every sandbox. Wheels are downloaded once per machine into the cache "
                    "($KILOD_AGENTS_CACHE, default ~/.cache/kilod/agents).")
    verbs_ = agents.add_subparsers(dest="agents_command", metavar="VERB", required=True)
    add = verbs_.add_parser("install", help="download and install an agent",
                            description="Install an agent (the catalog's tested version unless --version).")
    add.add_argument("name", choices=sorted(CATALOG), metavar="NAME", help=", ".join(CATALOG))
    add.add_argument("--version", help="another version of its PyPI package")
    add.add_argument("--image", help="python agents: the sandbox image whose python3 runs it "
                                     "(default $KILOD_SANDBOX_IMAGE or kilod/sandbox)")
    add.add_argument("--ca-bundle", type=Path, metavar="PEM",
                     help="python agents: CA bundle pip trusts in the build container (or $KILOD_CA_BUNDLE)")
    add.add_argument("--force", action="store_true", help="reinstall even when that version is there")
    add.add_argument("--json", action="store_true", help="print the installed agent as JSON")
    add.set_defaults(handler=cmd_install)
    listing = verbs_.add_parser("list", help="known agents and what is installed")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(handler=cmd_list)


def cmd_install(args: argparse.Namespace) -> int:
    from kilod.agents.install import InstallError, install

    try:
        installed = install(args.name, data_dir(), version=args.version, image=args.image,
                            ca_bundle=args.ca_bundle, force=args.force)
    except InstallError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(installed.to_json(), indent=2))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from kilod.agents.install import cache_root, current, list_installed

    root = data_dir()
    installed = list_installed(root)
    rows = []
    for name, spec in CATALOG.items():
        chosen = current(root, name)
        rows.append({
            "name": name, "kind": spec.kind, "project": spec.project, "pinned": spec.version,
            "current": chosen.version if chosen else None, "summary": spec.summary,
            "installed": [i.to_json() for i in installed if i.name == name],
        })
    if args.json:
        print(json.dumps({"agents": rows, "cache": str(cache_root()), "data_dir": str(root)}, indent=2))
        return 0
    print(f"{'AGENT':16} {'KIND':7} {'INSTALLED':12} {'PINNED':10} ABOUT")
    print(f"{'builtin':16} {'-':7} {'(always)':12} {'-':10} kilod's own loop, in the daemon")
    for row in rows:
        print(f"{row['name']:16} {row['kind']:7} {row['current'] or '-':12} {row['pinned']:10} {row['summary']}")
    print(f"\ninstall with `kilod agents install NAME`; wheels cached in {cache_root()}")
    return 0
