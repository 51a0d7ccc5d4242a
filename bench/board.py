"""`kilod ctl board` with 1,000 cards: wall time of the CLI, against `kilod --version` in the same run.

A real daemon gets N cards through the API (scripted model, every attempt cancelled at
once, with a sandbox image that does not exist so that nothing runs); then each command
is run R times in alternation (so a slow minute of the machine hits all of them alike)
and the medians are printed, each as a ratio to the baseline: wall time, and CPU time
(user + system of the process), which a machine shared with other jobs inflates far less.
`ctl board` draws what fits a 160x50 screen; `--all` draws every card (what `ctl board`
did before it fitted). The CLI runs with its modules byte-compiled (a pycache dir the
warm-up fills), as an installed kilod is: with PYTHONDONTWRITEBYTECODE set, every run
would compile the CLI's sources again. `--against DIR` adds `--version` and `ctl board` of
the CLI in another checkout (its cli/ and daemon/), in the same alternation, against the
same daemon: a before/after in one run. Asserts nothing. Run from the repository root:
`.venv/bin/python bench/board.py [--cards N] [--runs R] [--against DIR]`.
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
RAW_FITTED = "GET ?per_column=17 (no CLI)"  # what `ctl board` asks for on 50 lines
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


def run_cli(argv: list[str], env: dict[str, str], out: Path) -> tuple[float, float, int]:
    """Wall and CPU (user + system) milliseconds of one `kilod ARGV`, and how many bytes it printed."""
    started = time.perf_counter()
    with out.open("wb") as stdout:
        process = subprocess.Popen([sys.executable, "-m", "kilod_cli.main", *argv], env=env, stdout=stdout,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = (time.perf_counter() - started) * 1000
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"kilod {' '.join(argv)} exited {code}")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1000, out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="another checkout whose CLI runs --version and ctl board too (e.g. main's)")
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
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env.update({"KILOD_SOCKET": str(daemon.socket), "KILOD_CONFIG": str(data_dir / "none.toml"),
                    "COLUMNS": "160", "LINES": "50", "NO_COLOR": "1",
                    "PYTHONPYCACHEPREFIX": str(data_dir / "pycache")})
        out = data_dir / "stdout"
        commands = {name: (argv, env) for name, argv in COMMANDS.items()}
        if options.against is not None:
            other = options.against.resolve()
            other_env = {**env, "PYTHONPATH": f"{other / 'daemon'}:{other / 'cli'}",
                         "PYTHONPYCACHEPREFIX": str(data_dir / "pycache-against")}
            commands[f"--version ({other.name})"] = (["--version"], other_env)
            commands[f"ctl board ({other.name})"] = (["ctl", "board"], other_env)
        times: dict[str, list[float]] = {name: [] for name in [*commands, RAW_BOARD, RAW_FITTED]}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        sizes: dict[str, int] = {}
        for argv, cli_env in commands.values():  # a warm-up each: byte-code, the page cache, the first board
            run_cli(argv, cli_env, out)
        for _ in range(options.runs):
            for name, (argv, cli_env) in commands.items():
                elapsed, used, size = run_cli(argv, cli_env, out)
                times[name].append(elapsed)
                cpu[name].append(used)
                sizes[name] = size
            # the daemon's part alone: the same requests from this already running process
            for name, path in ((RAW_BOARD, "/v1/board"), (RAW_FITTED, "/v1/board?per_column=17")):
                started = time.perf_counter()
                sizes[name] = len(json.dumps(daemon.request("GET", path)))
                times[name].append((time.perf_counter() - started) * 1000)
    finally:
        daemon.stop()
        remove_labelled(daemon.instance)
        shutil.rmtree(data_dir, ignore_errors=True)
    base = statistics.median(times["kilod --version (baseline)"])
    base_cpu = statistics.median(cpu["kilod --version (baseline)"])
    print(f"{options.cards} cards, {options.runs} runs each in alternation, medians (stdout not a terminal, 160x50); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':<28} {'wall':>9} {'vs baseline':>12} {'CPU':>9} {'vs baseline':>12} {'stdout':>10}")
    for name, samples in times.items():
        median = statistics.median(samples)
        cpu_text = (f"{statistics.median(cpu[name]):>6.0f} ms {statistics.median(cpu[name]) / base_cpu:>11.2f}x"
                    if name in cpu else f"{'':>9} {'':>12}")
        print(f"{name:<28} {median:>6.0f} ms {median / base:>11.2f}x {cpu_text} {sizes[name] / 1024:>7.0f} KiB")
    board = statistics.median(times["kilod ctl board"])
    print("the GET rows are the daemon's share: the request and json.loads from a running Python process")
    print(f"goal: kilod ctl board ≤ {GOAL_MS:.0f} ms wall: {board:.0f} ms "
          f"({'met' if board <= GOAL_MS else 'not met'}; {board - base:.0f} ms above starting the CLI; "
          f"CPU {statistics.median(cpu['kilod ctl board']):.0f} ms)")


if __name__ == "__main__":
    main()
