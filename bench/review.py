"""Review at scale: kilod's snapshot + diff of a big worktree vs `git status` + `git diff` on it.

A packed repository of `--files` files (20,000 by default); a scripted attempt changes ten of
them; then, alternating, `GET /v1/attempts/{id}/diff` (snapshot of the worktree, then the
structured diff) and plain git in the same worktree. Prints medians and their ratio, and the CPU
time each side used (the daemon's own and its git processes', from /proc; git's from rusage), which
a loaded machine distorts far less than wall time; asserts nothing.
Run from the repository root: `.venv/bin/python bench/review.py [--files N] [--runs N]`.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def daemon_cpu(pid: int) -> float:
    """Seconds of CPU the daemon used, with the children it has waited for (its git processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")   # utime stime cutime cstime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    cpu = {"kilod": 0.0, "git": 0.0}
    try:
        repo = make_big_repo(data_dir / "repo", args.files)
        card = daemon.request("POST", "/v1/cards", {"prompt": "ten edits", "repo": str(repo),
                                                    "models": ["scripted/ten_edits"]})
        attempt = daemon.wait_state(card["attempts"][0]["id"], "review", timeout=600)
        worktree = Path(attempt["worktree"])
        git_review(worktree)  # git refreshes its index stat data once; kilod's first diff is not timed either
        files = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")["files"]
        pid = daemon.process.pid if daemon.process is not None else os.getpid()
        for _ in range(args.runs):
            used = children_cpu()
            raw.append(git_review(worktree))
            cpu["git"] += children_cpu() - used
            used, started = daemon_cpu(pid), time.perf_counter()
            daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")
            kilod.append(time.perf_counter() - started)
            cpu["kilod"] += daemon_cpu(pid) - used
    finally:
        daemon.stop()
        remove_labelled(daemon.instance)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"review of a {args.files}-file worktree with {len(files)} changed files, {args.runs} alternating runs")
    print(f"{'':>30} {'median':>9}")
    print(f"{'git status + git diff':>30} {statistics.median(raw) * 1000:>7.0f}ms")
    print(f"{'kilod GET …/diff':>30} {statistics.median(kilod) * 1000:>7.0f}ms")
    print(f"{'ratio kilod / git':>30} {statistics.median(kilod) / statistics.median(raw):>9.2f}   (target ≤ 2)")
    print(f"CPU per review: git {cpu['git'] / args.runs * 1000:.0f} ms, kilod {cpu['kilod'] / args.runs * 1000:.0f} ms "
          f"(daemon and its git), ratio {cpu['kilod'] / max(cpu['git'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
