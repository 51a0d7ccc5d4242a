"""`python -m kilod [--http HOST:PORT]`: run the daemon in the foreground with settings from the environment."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from kilod.app import serve
from kilod.config import Settings
from kilod.errors import KilodError
from kilod.logs import configure_logging


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kilod serve", description="Run the daemon in the foreground.")
    parser.add_argument("--http", metavar="HOST:PORT",
                        help="also serve the web board and the API on TCP (e.g. 127.0.0.1:8765; $KILOD_HTTP)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv or [])  # `kilod serve` calls main() with none; `python -m kilod` passes sys.argv
    configure_logging()  # JSON lines unless stderr is a terminal; KILOD_LOG_FORMAT, KILOD_LOG_LEVEL
    overrides = {"http": args.http} if args.http else {}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            name = "KILOD_" + "_".join(str(p) for p in error["loc"]).upper()
            print(f"kilod: bad setting {name}: {error['msg']}", file=sys.stderr)
        return 2
    try:
        serve(settings)
    except KilodError as exc:
        print(f"kilod: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
