"""Context management and prompt caching: input tokens over a 40-step run, and how much of it is cacheable.

A real daemon and real Docker run a scripted 40-step attempt whose every step prints
~1,000 tokens (`seq`), twice: with context management (the script declares a 24,000-token
window) and without (KILOD_CONTEXT_MANAGEMENT=false, no window). Figures:
  - input tokens sent in total, with / without (goal: <= 50%);
  - share of input tokens that repeat the previous request's start (what a prompt cache
    can serve), over steps 4-40 of the managed run (goal: >= 80%).
Both figures depend on the window against the output per step: a smaller window sends
less but compacts more often, and each compaction breaks the cached prefix (16,000 gave
31% sent but 75% cacheable on the machine in the README). Prints figures; asserts nothing.
Run from the repository root: `.venv/bin/python bench/context.py`.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.kilod_testing import DaemonProcess, make_repo, new_instance, remove_labelled

STEPS = 40
WINDOW = 24_000


def script(window: int | None) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"say": f"Step {n}.", "tools": [{"name": "shell", "arguments": {"command": f"seq {n} 800"}}]}
        for n in range(STEPS - 1)
    ]
    steps.append({"tools": [{"name": "finish", "arguments": {"summary": "done"}}]})
    return {"description": "40 steps of ~1,000-token outputs", "steps": steps,
            **({"context_window": window} if window else {})}


def run(data_dir: Path, scripts: Path, model: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """The attempt's per-step figures (tokens_in, cacheable share) from its message events."""
    daemon = DaemonProcess(data_dir, new_instance(), {"KILOD_SCRIPTS_DIR": str(scripts),
                                                      "KILOD_STEP_LIMIT": str(STEPS + 10), **env})
    daemon.start()
    try:
        repo = make_repo(data_dir / "repo")
        card = daemon.request("POST", "/v1/cards", {"prompt": "count", "repo": str(repo), "models": [model]})
        attempt_id = card["attempts"][0]["id"]
        attempt = daemon.wait_state(attempt_id, "review", timeout=900)
        if attempt["stop_reason"]:
            raise SystemExit(f"{model}: stopped early: {attempt['stop_reason']}")
        steps = [e["payload"] for e in daemon.events(attempt_id) if e["kind"] == "message" and "step" in e["payload"]]
        compactions = sum(1 for e in daemon.events(attempt_id) if e["kind"] == "log"
                          and str(e["payload"].get("message", "")).startswith("context: "))
        print(f"  {model:<22} steps {len(steps):>3}  input tokens {sum(s['tokens_in'] for s in steps):>9,}  "
              f"compactions {compactions}")
        return steps
    finally:
        daemon.stop()
        remove_labelled(daemon.instance)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="kc-", dir="/tmp"))
    try:
        scripts = root / "scripts"
        scripts.mkdir()
        (scripts / "managed.json").write_text(json.dumps(script(WINDOW)))
        (scripts / "unmanaged.json").write_text(json.dumps(script(None)))
        print(f"bench/context.py on {platform.node()} ({platform.machine()}, Python {platform.python_version()})")
        managed = run(root / "a", scripts, "scripted/managed", {})
        unmanaged = run(root / "b", scripts, "scripted/unmanaged", {"KILOD_CONTEXT_MANAGEMENT": "false"})
        sent, baseline = sum(s["tokens_in"] for s in managed), sum(s["tokens_in"] for s in unmanaged)
        later = managed[3:]
        cacheable = sum(s["cacheable"] * s["tokens_in"] for s in later) / max(1, sum(s["tokens_in"] for s in later))
        print(f"input tokens with context management / without: {sent:,} / {baseline:,} = {sent / baseline:.0%}"
              " (goal <= 50%)")
        print(f"share of input tokens cacheable after step 3 (managed run): {cacheable:.0%} (goal >= 80%)")
        print(f"largest request: {max(s['tokens_in'] for s in managed):,} tokens managed, "
              f"{max(s['tokens_in'] for s in unmanaged):,} unmanaged (window {WINDOW:,})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
