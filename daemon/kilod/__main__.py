"""`python -m kilod`: run the daemon in the foreground with settings from the environment."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from kilod.app import serve
from kilod.config import Settings
from kilod.errors import KilodError


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
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
    sys.exit(main())
