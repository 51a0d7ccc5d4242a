"""Review at scale: kilod's snapshot + diff of a big worktree vs `git status` + `git diff` on it.

A packed repository of `--files` files (20,000 by default); a scripted attempt changes ten of
them; then, alternating, `GET /v1/attempts/{id}/diff` (snapshot of the worktree, then the
structured diff) and plain git in the same worktree. Prints medians and their ratio; asserts
nothing. Run from the repository root: `.venv/bin/python bench/review.py [--files N] [--runs N]`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.kilod_testing import DaemonProcess, make_big_repo, new_instance, remove_labelled

SCRIPTS = Path(__file__).resolve().parent / "scripts"


def git_review(worktree: Path) -> float:
    # the daemon made the worktree as root, the bench may be another user: git refuses it without this
    command = ["git", "-c", "safe.directory=*", "-C", str(worktree)]
    started = time.perf_counter()
    for args in (["status", "--porcelain"], ["diff"]):
        done = subprocess.run([*command, *args], capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"git {args[0]} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="kv-", dir="/tmp"))
    daemon = DaemonProcess(data_dir, new_instance(), {"KILOD_SCRIPTS_DIR": str(SCRIPTS)})
    daemon.start()
    kilod: list[float] = []
    raw: list[float] = []
    try:
        repo = make_big_repo(data_dir / "repo", args.files)
        card = daemon.request("POST", "/v1/cards", {"prompt": "ten edits", "repo": str(repo),
                                                    "models": ["scripted/ten_edits"]})
        attempt = daemon.wait_state(card["attempts"][0]["id"], "review", timeout=600)
        worktree = Path(attempt["worktree"])
        git_review(worktree)  # git refreshes its index stat data once; kilod's first diff is not timed either
        files = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")["files"]
        for _ in range(args.runs):
            raw.append(git_review(worktree))
            started = time.perf_counter()
            daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")
            kilod.append(time.perf_counter() - started)
    finally:
        daemon.stop()
        remove_labelled(daemon.instance)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"review of a {args.files}-file worktree with {len(files)} changed files, {args.runs} alternating runs")
    print(f"{'':>30} {'median':>9}")
    print(f"{'git status + git diff':>30} {statistics.median(raw) * 1000:>7.0f}ms")
    print(f"{'kilod GET …/diff':>30} {statistics.median(kilod) * 1000:>7.0f}ms")
    print(f"{'ratio kilod / git':>30} {statistics.median(kilod) / statistics.median(raw):>9.2f}   (target ≤ 2)")


if __name__ == "__main__":
    main()
