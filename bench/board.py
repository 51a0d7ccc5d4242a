"""`kilod ctl board` with 1,000 cards: wall time of the CLI, against `kilod --version` in the same run.

A real daemon gets N cards through the API (scripted model, every attempt cancelled at
once, with a sandbox image that does not exist so that nothing runs); then each command
is run R times in alternation (so a slow minute of the machine hits all of them alike)
and the medians are printed, each as a ratio to the baseline. `ctl board` draws what fits
a 160x50 screen; `--all` draws every card (what `ctl board` did before it fitted).
Asserts nothing. Run from the repository root: `.venv/bin/python bench/board.py [--cards N] [--runs R]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.kilod_testing import ApiError, DaemonProcess, make_repo, new_instance, remove_labelled

SCRIPTS = Path(__file__).resolve().parent / "scripts"
GOAL_MS = 250.0
RAW_BOARD = "GET /v1/board (no CLI)"
COMMANDS: dict[str, list[str]] = {
    "kilod --version (baseline)": ["--version"],
    "kilod ctl status": ["ctl", "status"],
    "kilod ctl board": ["ctl", "board"],
    "kilod ctl board --json": ["ctl", "board", "--json"],
    "kilod ctl board --all": ["ctl", "board", "--all"],
}


def fill(daemon: DaemonProcess, repo: Path, cards: int) -> None:
    started = time.monotonic()
    for n in range(cards):
        card = daemon.request("POST", "/v1/cards", {
            "prompt": f"card {n}: make the greeting friendlier\n\nand say why", "repo": str(repo),
            "title": f"Card {n:04d}: make the greeting friendlier", "models": ["scripted/idle"]})
        for attempt in card["attempts"]:
            try:
                daemon.request("POST", f"/v1/attempts/{attempt['id']}/cancel")
            except ApiError as exc:  # it may have failed already (no such image): it rests either way
                if exc.status != 409:
                    raise
        if n % 100 == 99:
            print(f"  {n + 1} cards ({time.monotonic() - started:.0f} s)", file=sys.stderr)


def wall_ms(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kilod_cli.main", *argv], env=env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"kilod {' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed, len(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9)
    options = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="kb-", dir="/tmp"))
    daemon = DaemonProcess(data_dir, new_instance(), {
        "KILOD_SCRIPTS_DIR": str(SCRIPTS), "KILOD_MAX_PARALLEL": "1",
        "KILOD_SANDBOX_IMAGE": "kilod/no-such-image-for-the-board-bench:none"})
    daemon.start()
    try:
        repo = make_repo(data_dir / "repo")
        fill(daemon, repo, options.cards)
        daemon.wait_for(lambda: daemon.request("GET", "/v1/status").get("running", 0) == 0, what="nothing running")
        env = {**os.environ, "KILOD_SOCKET": str(daemon.socket), "KILOD_CONFIG": str(data_dir / "none.toml"),
               "COLUMNS": "160", "LINES": "50", "NO_COLOR": "1"}
        times: dict[str, list[float]] = {name: [] for name in [*COMMANDS, RAW_BOARD]}
        sizes: dict[str, int] = {}
        for argv in COMMANDS.values():  # a warm-up each: the page cache, the daemon's first board
            wall_ms(argv, env)
        for _ in range(options.runs):
            for name, argv in COMMANDS.items():
                elapsed, size = wall_ms(argv, env)
                times[name].append(elapsed)
                sizes[name] = size
            # the daemon's part alone: the same request from this already running process
            started = time.perf_counter()
            sizes[RAW_BOARD] = len(json.dumps(daemon.request("GET", "/v1/board")))
            times[RAW_BOARD].append((time.perf_counter() - started) * 1000)
    finally:
        daemon.stop()
        remove_labelled(daemon.instance)
        shutil.rmtree(data_dir, ignore_errors=True)
    base = statistics.median(times["kilod --version (baseline)"])
    print(f"{options.cards} cards, {options.runs} runs each in alternation, medians (stdout not a terminal, 160x50)")
    print(f"{'command':<28} {'wall':>9} {'vs baseline':>12} {'stdout':>10}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<28} {median:>6.0f} ms {median / base:>11.2f}x {sizes[name] / 1024:>7.0f} KiB")
    board = statistics.median(times["kilod ctl board"])
    print(f"{RAW_BOARD!r} is the daemon's share: the request and json.loads from a running Python process")
    print(f"goal: kilod ctl board ≤ {GOAL_MS:.0f} ms wall: {board:.0f} ms "
          f"({'met' if board <= GOAL_MS else 'not met'}; {board - base:.0f} ms above starting the CLI)")


if __name__ == "__main__":
    main()
