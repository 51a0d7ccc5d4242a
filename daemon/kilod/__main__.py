"""`python -m kilod`: run the daemon in the foreground with settings from the environment."""

from __future__ import annotations

import logging
import sys

from kilod.app import serve
from kilod.config import Settings
from kilod.errors import KilodError


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(Settings())
    except KilodError as exc:
        print(f"kilod: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
