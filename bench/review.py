"""Review at scale: kilod's snapshot + diff of a big worktree vs `git status` + `git diff` on it.

A packed repository of `--files` files (20,000 by default); a scripted attempt changes ten of
them; then, alternating, `GET /v1/attempts/{id}/diff` (snapshot of the worktree, then the
structured diff) and plain git in the same worktree, both for the same worktree asked again and
right after a new edit (which kilod has not seen). Prints medians and their ratio, and the CPU
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


class Timings:
    """Wall times and CPU of both sides for one kind of review."""

    def __init__(self, daemon_pid: int) -> None:
        self.pid = daemon_pid
        self.wall: dict[str, list[float]] = {"git": [], "kilod": []}
        self.cpu = {"git": 0.0, "kilod": 0.0}

    def git(self, worktree: Path) -> None:
        used = children_cpu()
        self.wall["git"].append(git_review(worktree))
        self.cpu["git"] += children_cpu() - used

    def kilod(self, daemon: DaemonProcess, attempt_id: str) -> None:
        used, started = daemon_cpu(self.pid), time.perf_counter()
        daemon.request("GET", f"/v1/attempts/{attempt_id}/diff")
        self.wall["kilod"].append(time.perf_counter() - started)
        self.cpu["kilod"] += daemon_cpu(self.pid) - used

    def report(self, what: str) -> None:
        git, kilod = (statistics.median(self.wall[side]) for side in ("git", "kilod"))
        runs = len(self.wall["git"])
        print(f"{what}: git status + git diff {git * 1000:.0f} ms, kilod GET …/diff {kilod * 1000:.0f} ms "
              f"(medians), ratio {kilod / git:.2f} (target ≤ 2); CPU per review git {self.cpu['git'] / runs * 1000:.0f}"
              f" ms, kilod {self.cpu['kilod'] / runs * 1000:.0f} ms (daemon and its git), "
              f"ratio {self.cpu['kilod'] / max(self.cpu['git'], 1e-9):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="kv-", dir="/tmp"))
    daemon = DaemonProcess(data_dir, new_instance(), {"KILOD_SCRIPTS_DIR": str(SCRIPTS)})
    daemon.start()
    try:
        repo = make_big_repo(data_dir / "repo", args.files)
        card = daemon.request("POST", "/v1/cards", {"prompt": "ten edits", "repo": str(repo),
                                                    "models": ["scripted/ten_edits"]})
        attempt = daemon.wait_state(card["attempts"][0]["id"], "review", timeout=600)
        worktree = Path(attempt["worktree"])
        git_review(worktree)  # git refreshes its index stat data once; kilod's first diff is not timed either
        files = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")["files"]
        edited = worktree / files[0]["path"]
        pid = daemon.process.pid if daemon.process is not None else os.getpid()
        again, fresh = Timings(pid), Timings(pid)
        for i in range(args.runs):
            again.git(worktree)   # the same worktree asked again (kilod keeps the answers it computed)
            again.kilod(daemon, attempt["id"])
            with edited.open("a") as handle:  # a new change: neither side has seen this worktree
                handle.write(f"EDITED = {i}\n")
            if i % 2 == 0:
                fresh.git(worktree)
                fresh.kilod(daemon, attempt["id"])
            else:
                fresh.kilod(daemon, attempt["id"])
                fresh.git(worktree)
    finally:
        daemon.stop()
        remove_labelled(daemon.instance)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"review of a {args.files}-file worktree with {len(files)} changed files, {args.runs} alternating runs")
    again.report("asked again")
    fresh.report("after an edit")


if __name__ == "__main__":
    main()
