"""Start latency: POST /v1/cards → the agent's first tool running in its container,
against the same primitives done by hand (git worktree add + container create/start + one exec).

Run from the repository root: `.venv/bin/python bench/start_latency.py [--runs N]`.
Prints both medians and their ratio; asserts nothing.
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
from tests.kilod_testing import DaemonProcess, make_repo, new_instance, remove_labelled

SCRIPTS = Path(__file__).resolve().parent / "scripts"
IMAGE = os.environ.get("KILOD_SANDBOX_IMAGE", "kilod/sandbox")


def clock_from(output: str) -> float:
    return float(output.strip().splitlines()[-1])


def kilod_runs(repo: Path, runs: int) -> list[float]:
    data_dir = Path(tempfile.mkdtemp(prefix="kb-", dir="/tmp"))
    daemon = DaemonProcess(data_dir, new_instance(), {"KILOD_SCRIPTS_DIR": str(SCRIPTS)})
    daemon.start()
    try:
        daemon.wait_for(lambda: daemon.request("GET", "/v1/status")["litellm_ready"], what="litellm")
        latencies = []
        for i in range(runs):
            sent = time.time()
            card = daemon.request("POST", "/v1/cards", {
                "prompt": f"bench {i}", "repo": str(repo), "models": ["scripted/first_tool"],
            })
            attempt_id = card["attempts"][0]["id"]
            daemon.wait_state(attempt_id, "review")
            first = next(e for e in daemon.events(attempt_id)
                         if e["kind"] == "tool_result" and e["payload"]["name"] == "shell")
            latencies.append(clock_from(first["payload"]["output"]) - sent)
            print(f"  kilod run {i + 1}: {latencies[-1] * 1000:.0f} ms", file=sys.stderr)
        return latencies
    finally:
        daemon.stop()
        remove_labelled(daemon.instance)
        shutil.rmtree(data_dir, ignore_errors=True)


def raw_runs(repo: Path, runs: int) -> list[float]:
    client = docker.from_env()
    instance = new_instance()
    work = Path(tempfile.mkdtemp(prefix="kr-", dir="/tmp"))
    git_dir = str((repo / ".git").resolve())
    uid = 1000 if os.getuid() == 0 else os.getuid()
    latencies = []
    try:
        for i in range(runs):
            worktree = work / f"raw-{i}"
            started = time.time()
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "-b", f"bench-raw/{instance}-{i}",
                            str(worktree), "HEAD"], check=True)
            if os.getuid() == 0:
                subprocess.run(["chown", "-R", f"{uid}:{uid}", str(worktree)], check=True)
            container = client.containers.create(
                IMAGE, command=["sleep", "infinity"], name=f"kilod-bench-{instance}-{i}",
                labels={"kilod.instance": instance, "kilod.attempt": f"raw-{i}"},
                user=f"{uid}:{uid}", working_dir="/workspace", network_mode="none",
                cap_drop=["ALL"], security_opt=["no-new-privileges"], init=True,
                mounts=[Mount("/workspace", str(worktree), type="bind"),
                        Mount("/workspace/.git", str(worktree / ".git"), type="bind", read_only=True),
                        Mount(git_dir, git_dir, type="bind", read_only=True)],
            )
            container.start()
            output = container.exec_run(["sh", "-c", "date +%s.%N"]).output.decode()
            latencies.append(clock_from(output) - started)
            print(f"  raw run {i + 1}: {latencies[-1] * 1000:.0f} ms", file=sys.stderr)
    finally:
        remove_labelled(instance)
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["git", "-C", str(repo), "worktree", "prune"], check=False)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kbr-", dir="/tmp") as tmp:
        repo = make_repo(Path(tmp) / "repo")
        print(f"start latency, {args.runs} runs each (image {IMAGE})", file=sys.stderr)
        raw = raw_runs(repo, args.runs)
        kilod = kilod_runs(repo, args.runs)
    raw_median, kilod_median = statistics.median(raw), statistics.median(kilod)
    print(f"{'':>28} {'median':>9} {'min':>9} {'max':>9}")
    for name, values in (("raw primitives", raw), ("kilod POST → first tool", kilod)):
        print(f"{name:>28} {statistics.median(values) * 1000:>7.0f}ms {min(values) * 1000:>7.0f}ms "
              f"{max(values) * 1000:>7.0f}ms")
    print(f"{'ratio kilod / raw':>28} {kilod_median / raw_median:>9.2f}   (target ≤ 1.5)")


if __name__ == "__main__":
    main()
