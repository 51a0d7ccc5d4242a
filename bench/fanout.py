"""Fan-out: cards with 1, 2, 4 and 8 scripted attempts; wall time to all-Review and the daemon's peak RSS.

The scripted model waits like a remote one (no CPU work), so on this 2-core machine
the time with 8 should stay within 2x the time with 1. Prints a table; asserts nothing.
Run from the repository root: `.venv/bin/python bench/fanout.py`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.kilod_testing import DaemonProcess, make_repo, new_instance, remove_labelled

SCRIPTS = Path(__file__).resolve().parent / "scripts"
SIZES = (1, 2, 4, 8)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="kf-", dir="/tmp"))
    daemon = DaemonProcess(data_dir, new_instance(), {"KILOD_SCRIPTS_DIR": str(SCRIPTS), "KILOD_MAX_PARALLEL": "8"})
    daemon.start()
    try:
        daemon.wait_for(lambda: daemon.request("GET", "/v1/status")["litellm_ready"], what="litellm")
        assert daemon.process is not None
        repo = make_repo(data_dir / "repo")
        rows = []
        for size in SIZES:
            started = time.monotonic()
            card = daemon.request("POST", "/v1/cards", {
                "prompt": f"fan out {size}", "repo": str(repo), "models": ["scripted/idle"], "repeat": size,
            })
            for attempt in card["attempts"]:
                daemon.wait_state(attempt["id"], "review", timeout=600)
            seconds = time.monotonic() - started
            rows.append((size, seconds, peak_rss_mib(daemon.process.pid)))
            print(f"  {size} attempt(s): {seconds:.2f} s", file=sys.stderr)
            for attempt in card["attempts"]:  # free the containers before the next size
                daemon.request("POST", f"/v1/attempts/{attempt['id']}/discard")
    finally:
        daemon.stop()
        remove_labelled(daemon.instance)
        shutil.rmtree(data_dir, ignore_errors=True)
    base = rows[0][1]
    print(f"{'attempts':>8} {'wall to all-Review':>19} {'vs 1':>6} {'daemon peak RSS':>16}")
    for size, seconds, rss in rows:
        print(f"{size:>8} {seconds:>17.2f} s {seconds / base:>5.2f}x {rss:>12.0f} MiB")
    print("target: 8 attempts within 2.00x of 1")


if __name__ == "__main__":
    main()
