"""`kilod images build`: run the images/build.sh that ships with the installed kilod."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kilod
from kilod_cli.client import CliError

IMAGE_TARGETS = ("sandbox", "daemon", "proxy")
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
