"""Setup with warm caches: a repository's first attempt (cold caches) against its second (warm).

The setup installs a few PyPI packages through the egress allowlist the way a
repository with a wheelhouse cache would (`caches = ["/tmp/wheels"]`): install from
the wheelhouse, and download into it only what is missing. Both attempts run in the
same daemon, one after the other; each pair uses a fresh repository (cold caches).

Run from the repository root: `.venv/bin/python bench/setup_cache.py [--pairs N]`.
Needs Docker, PyPI (KILOD_EXTRA_CA_CERTS: a CA bundle if TLS is inspected; default
the host's) and builds kilod/proxy and a pip sandbox image if missing. Prints the
setup time of both attempts, and their ratio (goal ≤ 0.3); asserts nothing.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.environments.conftest import HOST_CA_BUNDLE, PROXY_IMAGE, ensure_pip_image, trust
from tests.kilod_testing import REPO_ROOT, TEST_SCRIPTS, DaemonProcess, make_repo, new_instance, remove_labelled

PACKAGES = "requests==2.32.3 charset-normalizer==3.4.0 idna==3.10 urllib3==2.2.3 certifi==2024.8.30"
INSTALL = f"python3 -m pip install -q --no-index --find-links /tmp/wheels --target /tmp/site {PACKAGES}"
DOWNLOAD = f"python3 -m pip download -q --retries 2 -d /tmp/wheels {PACKAGES}"
SETUP = [f"{INSTALL} 2>/dev/null || {{ {DOWNLOAD} && {INSTALL}; }}"]
KILOD_TOML = (f'network = ["pypi.org", "files.pythonhosted.org"]\ncaches = ["/tmp/wheels"]\n'
              f"setup = {json.dumps(SETUP)}\n")


def setup_seconds(daemon: DaemonProcess, repo: Path) -> float:
    trust(daemon, repo)
    card = daemon.request("POST", "/v1/cards", {"prompt": "bench", "repo": str(repo), "models": ["scripted/steady"]})
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review", timeout=600)
    runs = [e["payload"] for e in daemon.events(attempt["id"])
            if e["payload"].get("step") == "setup" and "duration" in e["payload"]]
    if not runs or any(r["status"] != "passed" for r in runs):
        raise SystemExit(f"setup failed: {runs}")
    return float(sum(r["duration"] for r in runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="fresh repositories, two attempts each")
    args = parser.parse_args()
    ca = os.environ.get("KILOD_EXTRA_CA_CERTS", str(HOST_CA_BUNDLE))
    sandbox = os.environ.get("KILOD_SANDBOX_IMAGE", "kilod/sandbox")
    # build only what is missing: the sandbox image may be shared with other work on this machine
    missing = [name for name, tag in (("sandbox", sandbox), ("proxy", PROXY_IMAGE))
               if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0]
    if missing and subprocess.run(["bash", str(REPO_ROOT / "images" / "build.sh"), *missing]).returncode != 0:
        return 1
    image = ensure_pip_image(sandbox)
    work = Path(tempfile.mkdtemp(prefix="kbc-", dir="/tmp"))
    daemon = DaemonProcess(work / "d", new_instance(), {
        "KILOD_SCRIPTS_DIR": str(TEST_SCRIPTS), "KILOD_SANDBOX_IMAGE": image, "KILOD_PROXY_IMAGE": PROXY_IMAGE,
        "KILOD_EXTRA_CA_CERTS": ca})
    firsts, seconds = [], []
    try:
        daemon.start()
        for pair in range(args.pairs):
            repo = make_repo(work / f"repo-{pair}", {"README.md": "# bench\n", ".kilod.toml": KILOD_TOML})
            firsts.append(setup_seconds(daemon, repo))
            seconds.append(setup_seconds(daemon, repo))
            print(f"  pair {pair + 1}: first {firsts[-1]:.2f} s, second {seconds[-1]:.2f} s", file=sys.stderr)
    finally:
        daemon.stop()
        remove_labelled(daemon.instance)
        shutil.rmtree(work, ignore_errors=True)
    first, second = statistics.median(firsts), statistics.median(seconds)
    print(f"setup, first attempt (cold caches):  median {first:.2f} s over {len(firsts)}")
    print(f"setup, second attempt (warm caches): median {second:.2f} s over {len(seconds)}")
    print(f"ratio second/first: {second / first:.2f}  (goal <= 0.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
