"""Start latency: POST /v1/cards → the agent's first tool running in its container,
against the same primitives done by hand (git worktree add + container create/start + one exec).

Raw and kilod runs alternate (raw 1, kilod 1, raw 2, …): the kernel's cost of creating
files drifts a lot over minutes on this machine, and a batch order would turn that drift
into a fake ratio. `--files N` generates a packed repository of N files instead of the
two-file default. `--checkout-workers N` times only the worktree step instead (kilod's
`add_worktree`, owner change and index refresh included) with git's parallel checkout
(`checkout.workers=N`) against git's serial default, alternating, on that repository.
Run from the repository root: `.venv/bin/python bench/start_latency.py [--runs N] [--files N]
[--checkout-workers N]`. Prints both medians and their ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
from docker.types import Mount

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.kilod_testing import DaemonProcess, git, make_big_repo, make_repo, new_instance, remove_labelled

from kilod.git.paths import inspect_repo
from kilod.git.worktree import add_worktree, remove_worktree

SCRIPTS = Path(__file__).resolve().parent / "scripts"
IMAGE = os.environ.get("KILOD_SANDBOX_IMAGE", "kilod/sandbox")


def clock_from(output: str) -> float:
    return float(output.strip().splitlines()[-1])


class KilodRunner:
    """One daemon for all kilod runs; `run(i)` times one card from POST to its first tool."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.data_dir = Path(tempfile.mkdtemp(prefix="kb-", dir="/tmp"))
        self.daemon = DaemonProcess(self.data_dir, new_instance(), {"KILOD_SCRIPTS_DIR": str(SCRIPTS)})
        self.daemon.start()
        self.daemon.wait_for(lambda: self.daemon.request("GET", "/v1/status")["litellm_ready"], what="litellm")

    def run(self, i: int) -> float:
        sent = time.time()
        card = self.daemon.request("POST", "/v1/cards", {
            "prompt": f"bench {i}", "repo": str(self.repo), "models": ["scripted/first_tool"],
        })
        attempt_id = card["attempts"][0]["id"]
        self.daemon.wait_state(attempt_id, "review", timeout=600)
        first = next(e for e in self.daemon.events(attempt_id)
                     if e["kind"] == "tool_result" and e["payload"]["name"] == "shell")
        latency = clock_from(first["payload"]["output"]) - sent
        # free the disk and the container, as the raw run does, so both start from the same state
        self.daemon.request("POST", f"/v1/attempts/{attempt_id}/discard")
        return latency

    def close(self) -> None:
        self.daemon.stop()
        remove_labelled(self.daemon.instance)
        shutil.rmtree(self.data_dir, ignore_errors=True)


class RawRunner:
    """The same primitives by hand: git worktree add, chown, container create + start, one exec."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.client = docker.from_env()
        self.instance = new_instance()
        self.work = Path(tempfile.mkdtemp(prefix="kr-", dir="/tmp"))
        self.git_dir = str((repo / ".git").resolve())
        self.uid = 1000 if os.getuid() == 0 else os.getuid()

    def run(self, i: int) -> float:
        uid = self.uid
        worktree = self.work / f"raw-{i}"
        started = time.time()
        subprocess.run(["git", "-C", str(self.repo), "worktree", "add", "-q", "-b",
                        f"bench-raw/{self.instance}-{i}", str(worktree), "HEAD"], check=True)
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", f"{uid}:{uid}", str(worktree)], check=True)
        container = self.client.containers.create(
            IMAGE, command=["sleep", "infinity"], name=f"kilod-bench-{self.instance}-{i}",
            labels={"kilod.instance": self.instance, "kilod.attempt": f"raw-{i}"},
            user=f"{uid}:{uid}", working_dir="/workspace", network_mode="none",
            cap_drop=["ALL"], security_opt=["no-new-privileges"], init=True,
            mounts=[Mount("/workspace", str(worktree), type="bind"),
                    Mount("/workspace/.git", str(worktree / ".git"), type="bind", read_only=True),
                    Mount(self.git_dir, self.git_dir, type="bind", read_only=True)],
        )
        container.start()
        output = container.exec_run(["sh", "-c", "date +%s.%N"]).output.decode()
        latency = clock_from(output) - started
        container.remove(force=True)
        shutil.rmtree(worktree, ignore_errors=True)
        subprocess.run(["git", "-C", str(self.repo), "worktree", "prune"], check=False)
        subprocess.run(["git", "-C", str(self.repo), "branch", "-q", "-D", f"bench-raw/{self.instance}-{i}"],
                       check=False)
        return latency

    def close(self) -> None:
        remove_labelled(self.instance)
        shutil.rmtree(self.work, ignore_errors=True)
        subprocess.run(["git", "-C", str(self.repo), "worktree", "prune"], check=False)


def checkout_workers(repo: Path, workers: int, runs: int) -> None:
    """kilod's worktree step with `checkout.workers=N` vs git's default (1: serial), alternating."""
    info = inspect_repo(str(repo))
    base = git(repo, "rev-parse", "HEAD").strip()
    owner = (1000, 1000) if os.getuid() == 0 else None
    instance = new_instance()
    variants = {"serial": ("checkout.workers=1",), f"checkout.workers={workers}": (f"checkout.workers={workers}",)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="kbw-", dir="/tmp") as tmp:
        for i in range(runs):
            order = list(variants) if i % 2 == 0 else list(reversed(variants))
            for name in order:
                worktree, branch = Path(tmp) / f"w{i}-{len(times[name])}", f"bench-co/{instance}-{i}-{name[:7]}"
                started = time.perf_counter()
                add_worktree(info, worktree, branch, base, owner, config=variants[name])
                times[name].append(time.perf_counter() - started)
                remove_worktree(info, worktree, branch)
            print(f"  run {i + 1}: " + ", ".join(f"{n} {times[n][-1] * 1000:.0f} ms" for n in variants),
                  file=sys.stderr)
    serial, parallel = (statistics.median(times[n]) for n in variants)
    print(f"worktree step, {runs} alternating runs, {len(git(repo, 'ls-files').splitlines())} files, "
          f"{os.cpu_count()} cores")
    for name in variants:
        print(f"{name:>28} {statistics.median(times[name]) * 1000:>7.0f}ms {min(times[name]) * 1000:>7.0f}ms "
              f"{max(times[name]) * 1000:>7.0f}ms")
    print(f"{'ratio workers / serial':>28} {parallel / serial:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--files", type=int, default=0, help="generate a packed repository of this many files")
    parser.add_argument("--checkout-workers", type=int, default=0,
                        help="time only the worktree step: checkout.workers=N against serial")
    args = parser.parse_args()
    if args.checkout_workers:
        with tempfile.TemporaryDirectory(prefix="kbr-", dir="/tmp") as tmp:
            repo = make_big_repo(Path(tmp) / "repo", args.files or 20_000)
            checkout_workers(repo, args.checkout_workers, args.runs)
        return
    raw: list[float] = []
    kilod: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kbr-", dir="/tmp") as tmp:
        repo = make_big_repo(Path(tmp) / "repo", args.files) if args.files else make_repo(Path(tmp) / "repo")
        what = f"{args.files} files" if args.files else "the two-file repository"
        print(f"start latency, {args.runs} alternating runs each, {what} (image {IMAGE})", file=sys.stderr)
        raw_runner, kilod_runner = RawRunner(repo), KilodRunner(repo)
        try:
            for i in range(args.runs):
                raw.append(raw_runner.run(i))
                kilod.append(kilod_runner.run(i))
                print(f"  run {i + 1}: raw {raw[-1] * 1000:.0f} ms, kilod {kilod[-1] * 1000:.0f} ms", file=sys.stderr)
        finally:
            raw_runner.close()
            kilod_runner.close()
    raw_median, kilod_median = statistics.median(raw), statistics.median(kilod)
    print(f"{'':>28} {'median':>9} {'min':>9} {'max':>9}")
    for name, values in (("raw primitives", raw), ("kilod POST → first tool", kilod)):
        print(f"{name:>28} {statistics.median(values) * 1000:>7.0f}ms {min(values) * 1000:>7.0f}ms "
              f"{max(values) * 1000:>7.0f}ms")
    target = "1.2" if args.files else "1.1"
    print(f"{'ratio kilod / raw':>28} {kilod_median / raw_median:>9.2f}   (target ≤ {target})")


if __name__ == "__main__":
    main()
