"""A hook for crash tests: `KILOD_CRASH_AT=<point>` makes the daemon `kill -9` itself there.

Landing names its steps (`journaled`, `branch`, `checkout`, `checked-out`, `ref`,
`recorded`); tests set the variable to prove that a daemon dying at that step
leaves nothing the next start does not complete. Unset (always, outside tests),
each call is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "KILOD_CRASH_AT"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_point(name: str) -> None:
    """Die here, now, if the test asked for this point."""
    if os.environ.get(ENV) == name:
        _die()


def crash_during(name: str, seconds: float) -> None:
    """Die `seconds` from now, in the middle of whatever starts next, if the test asked for this point."""
    if os.environ.get(ENV) == name:
        threading.Timer(seconds, _die).start()
