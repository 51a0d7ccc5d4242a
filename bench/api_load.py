"""API under load: p50/p99 of `GET /v1/board` on the socket, idle vs with N live attempts.

Each live attempt plays `scripted/busy` (25 quick shell steps), so the daemon writes and
publishes a steady stream of events while the board is read. Both figures come from one
daemon in one run, idle sampled before and after the load; the ratio is the point. Also
prints the daemon's CPU while loaded and its RSS per live attempt.
Run from the repository root: `.venv/bin/python bench/api_load.py [--attempts 20]`. Asserts nothing.
`--profile FILE` records the daemon with py-spy while it is loaded, per thread, as collapsed
stacks: threads on the CPU (`--profile-mode cpu`), every thread, waiting or not (`idle`), or the
one holding the GIL (`gil`); the latencies of such a run are not figures (sampling costs CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.kilod_testing import DaemonProcess, make_repo, new_instance, remove_labelled

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "bench" / "scripts"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# The sampler runs in a process of its own: in this one, the watcher's requests would hold the GIL
# while a board answer waits to be read, and the figure would include the bench's own waits.
SAMPLER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[5])
from tests.kilod_testing import UnixHTTPConnection
path, count, pause, stop = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
latencies = []
while (count and len(latencies) < count) or (not count and not os.path.exists(stop)):
    started = time.perf_counter()
    connection = UnixHTTPConnection(path)
    connection.request("GET", "/v1/board")
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 200, response.status
    latencies.append(time.perf_counter() - started)
    time.sleep(pause)
print(" ".join(f"{value:.6f}" for value in latencies))
"""


FLOOR_SERVER = r"""
import sys
from aiohttp import web
body = open(sys.argv[2]).read()
async def board(request):
    return web.Response(text=body, content_type="application/json")
app = web.Application()
app.router.add_get("/v1/board", board)
web.run_app(app, path=sys.argv[1], print=None)
"""


def sample(socket_path: str, until: threading.Event | None, count: int, pause: float) -> list[float]:
    """Latencies of GET /v1/board, taken by a process of its own: `count` of them, or until `until` is set."""
    stop = Path(tempfile.mkdtemp(prefix="ka-stop-", dir="/tmp")) / "stop"
    sampler = subprocess.Popen([sys.executable, "-c", SAMPLER, socket_path, str(count), str(pause), str(stop),
                                str(ROOT)], stdout=subprocess.PIPE, text=True)
    if until is not None:
        until.wait()
        stop.touch()
    out, _ = sampler.communicate(timeout=600)
    shutil.rmtree(stop.parent, ignore_errors=True)
    return [float(value) for value in out.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attempts", type=int, default=20)
    parser.add_argument("--profile", type=Path, help="py-spy's collapsed stacks of the loaded daemon, to this file")
    parser.add_argument("--profile-mode", choices=("cpu", "idle", "gil"), default="cpu")
    args = parser.parse_args()
    profiler: subprocess.Popen[bytes] | None = None
    floor_server: subprocess.Popen[bytes] | None = None
    data_dir = Path(tempfile.mkdtemp(prefix="ka-", dir="/tmp"))
    daemon = DaemonProcess(data_dir, new_instance(), {
        "KILOD_SCRIPTS_DIR": str(SCRIPTS), "KILOD_MAX_PARALLEL": str(args.attempts),
    })
    daemon.start()
    try:
        daemon.wait_for(lambda: daemon.request("GET", "/v1/status")["litellm_ready"], what="litellm")
        assert daemon.process is not None
        repo = make_repo(data_dir / "repo")
        # a board that is not empty: a few finished cards, as a real one has
        warm = daemon.request("POST", "/v1/cards", {"prompt": "warm up", "repo": str(repo),
                                                    "models": ["scripted/first_tool"], "repeat": 4})
        for attempt in warm["attempts"]:
            daemon.wait_state(attempt["id"], "review", timeout=300)
        idle_rss = rss_mib(daemon.process.pid)
        idle = sample(str(daemon.socket), None, 300, 0.005)
        # the machine's floor: the same board's bytes from a bare aiohttp server in a process of its own,
        # sampled alongside the daemon under the same load (what any server here would see)
        board_file = data_dir / "board.json"
        board_file.write_text(json.dumps(daemon.request("GET", "/v1/board")))
        floor_socket = str(data_dir / "floor.sock")
        floor_server = subprocess.Popen([sys.executable, "-c", FLOOR_SERVER, floor_socket, str(board_file)])
        daemon.wait_for(lambda: Path(floor_socket).exists(), what="the floor server")
        floor_idle = sample(floor_socket, None, 300, 0.005)

        card = daemon.request("POST", "/v1/cards", {"prompt": "load", "repo": str(repo),
                                                    "models": ["scripted/busy"], "repeat": 1})
        cards = [card] + [daemon.request("POST", "/v1/cards", {"prompt": f"load {i}", "repo": str(repo),
                                                               "models": ["scripted/busy"]})
                          for i in range(args.attempts - 1)]
        ids = [c["attempts"][0]["id"] for c in cards]
        daemon.wait_for(lambda: sum(daemon.attempt(i)["state"] == "running" for i in ids) >= args.attempts // 2,
                        timeout=300, what="attempts running")
        events_before = daemon.request("GET", "/v1/status")["last_event_id"]
        cpu_before = cpu_seconds(daemon.process.pid)
        if args.profile is not None:
            # --nonblocking: sampling without stopping the daemon each time (it skews the load less)
            profiler = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                                         str(daemon.process.pid), "--threads", "--format", "raw", "--rate", "100",
                                         "--nonblocking", *{"cpu": [], "idle": ["--idle"], "gil": ["--gil"]}[
                                             args.profile_mode], "--output", str(args.profile)],
                                        stdout=subprocess.DEVNULL)
        load_started = time.monotonic()
        done = threading.Event()
        peak_rss = [0.0]

        def watch() -> None:
            while not all(daemon.attempt(i)["state"] in ("review", "failed") for i in ids):
                peak_rss[0] = max(peak_rss[0], rss_mib(daemon.process.pid))  # type: ignore[union-attr]
                time.sleep(0.5)
            done.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        floor: list[float] = []
        floor_sampler = threading.Thread(target=lambda: floor.extend(sample(floor_socket, done, 0, 0.005)))
        floor_sampler.start()
        loaded = sample(str(daemon.socket), done, 0, 0.005)
        floor_sampler.join()
        watcher.join()
        seconds = time.monotonic() - load_started
        cpu = cpu_seconds(daemon.process.pid) - cpu_before
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            profiler.wait(timeout=60)
        events = daemon.request("GET", "/v1/status")["last_event_id"] - events_before
        # idle again (every attempt in review): the machine's other load drifts over a run, so
        # the ratio is taken against the idle samples of both ends
        idle_after = sample(str(daemon.socket), None, 300, 0.005)
    finally:
        if floor_server is not None:
            floor_server.terminate()
            floor_server.wait(timeout=30)
        daemon.stop()
        remove_labelled(daemon.instance)
        shutil.rmtree(data_dir, ignore_errors=True)

    def row(name: str, values: list[float]) -> None:
        print(f"{name:>24} {len(values):>6} {statistics.median(values) * 1000:>8.1f} ms "
              f"{percentile(values, 0.99) * 1000:>8.1f} ms")

    print(f"GET /v1/board on the unix socket; {args.attempts} live scripted attempts, "
          f"{events / seconds:.0f} events/s while loaded")
    print(f"{'':>24} {'calls':>6} {'p50':>11} {'p99':>11}")
    row("idle", idle)
    row(f"{args.attempts} live attempts", loaded)
    row("idle after", idle_after)
    row("floor: bare server, idle", floor_idle)
    row("floor: bare server, load", floor)
    print(f"{'p99 ratio loaded / idle':>24} {percentile(loaded, 0.99) / percentile(idle + idle_after, 0.99):>6.1f}x"
          "   (idle: both ends; target ≤ 3, and p99 ≤ 20 ms under load)")
    print(f"{'daemon CPU while loaded':>24} {cpu / seconds * 100:>6.0f} %   of one core "
          f"({cpu / events * 1000:.1f} ms per event; load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"{'daemon RSS per attempt':>24} {(peak_rss[0] - idle_rss) / args.attempts:>6.2f} MiB"
          f"   (idle {idle_rss:.0f} MiB, peak {peak_rss[0]:.0f} MiB; target ≤ 3)")


if __name__ == "__main__":
    main()
