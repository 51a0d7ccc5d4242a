"""The verbs that act on this machine rather than through `ctl`: serve, demo, doctor, images build."""

from __future__ import annotations

import argparse
import os

from kilod_cli.verbs import Subparsers, add_json_option, client_for

# Kept here, not imported from images.py, so that building the parser loads nothing extra.
IMAGE_TARGETS = ("sandbox", "daemon", "proxy", "dind")


def cmd_serve(args: argparse.Namespace) -> int:
    if args.socket:
        os.environ["KILOD_SOCKET"] = args.socket
    # The one place the CLI loads the daemon itself (aiohttp, pydantic, ...).
    from kilod.__main__ import main as serve_main

    return serve_main(["--http", args.http] if args.http else [])


def cmd_doctor(args: argparse.Namespace) -> int:
    from kilod_cli.doctor import doctor

    return doctor(client_for(args), args.json)


def cmd_images_build(args: argparse.Namespace) -> int:
    from kilod_cli.images import run_build

    return run_build(list(dict.fromkeys(args.targets)) or ["sandbox"])


def cmd_images_list(args: argparse.Namespace) -> int:
    from kilod_cli.images import cmd_list

    return cmd_list(args)


def cmd_images_prune(args: argparse.Namespace) -> int:
    from kilod_cli.images import cmd_prune

    return cmd_prune(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from kilod_cli.demo import run_demo

    return run_demo(client_for(args), agents=args.agents)


def image_target(value: str) -> str:
    # a type, not `choices`: argparse rejects an empty `nargs="*"` list against choices
    if value not in IMAGE_TARGETS:
        raise argparse.ArgumentTypeError(f"unknown image '{value}' (known: {', '.join(IMAGE_TARGETS)})")
    return value


def register(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    serve = verbs.add_parser("serve", parents=[common], help="run the daemon in the foreground",
                             description="Run the daemon in the foreground (settings from KILOD_* env).")
    serve.add_argument("--http", metavar="HOST:PORT",
                       help="also serve the web board and the API on TCP, e.g. 127.0.0.1:8765 (token required)")
    serve.set_defaults(handler=cmd_serve)

    demo = verbs.add_parser("demo", parents=[common], help="three scripted agents on a sample repo",
                            description="Build the sandbox image, start a daemon if needed, and run three "
                                        "scripted agents on a sample repository. The daemon keeps running.")
    demo.add_argument("--agents", action="store_true",
                      help="the built-in agent beside the real Claude Code and Codex (installs them first)")
    demo.set_defaults(handler=cmd_demo)

    doctor = verbs.add_parser("doctor", parents=[common], help="check Docker, the image, git, disk, daemon")
    add_json_option(doctor)
    doctor.set_defaults(handler=cmd_doctor)

    images = verbs.add_parser("images", help="kilod's images: build, list, prune")
    image_verbs = images.add_subparsers(dest="images_command", metavar="VERB", required=True)
    build = image_verbs.add_parser("build", help="build images (cheap when up to date)",
                                   description="Build kilod's images with images/build.sh.")
    build.add_argument("targets", nargs="*", type=image_target, metavar="IMAGE",
                       help="sandbox (default), daemon, proxy (the egress proxy) and/or dind "
                            "(the Helm chart's Docker-in-Docker engine)")
    build.set_defaults(handler=cmd_images_build)
    for name, help_text in (("list", "images kilod built (repositories' and its own)"),
                            ("prune", "remove repositories' images no container uses")):
        verb = image_verbs.add_parser(name, parents=[common], help=help_text, description=help_text + ".")
        add_json_option(verb)
        verb.set_defaults(handler=cmd_images_list if name == "list" else cmd_images_prune)
