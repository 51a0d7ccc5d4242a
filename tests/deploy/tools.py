"""What the deployment tests need beyond the dev venv: Helm's library, systemd-analyze, Docker.

Helm's Go library ships in PyPI wheels that need Python >= 3.12, newer than the project's:
they go into their own venv under `.cache/helm-venv` (ignored by git), made once with the
first Python >= 3.12 found, and are driven through `helm_driver.py` in a subprocess.
A tool that CI installs is never skipped there: with `CI` set, a missing one fails.
"""

from __future__ import annotations

import copy
import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "kilod"
CACHE = REPO_ROOT / ".cache"
HELM_VENV = CACHE / "helm-venv"
DRIVER = Path(__file__).resolve().parent / "helm_driver.py"
# helm-sdkpy: Helm's lint (the choice). helm-python-sdk: Helm's offline render
# (`helm template`), which helm-sdkpy does not expose. Pinned: their APIs are young.
HELM_PACKAGES = ("helm-sdkpy==0.1.32", "helm-python-sdk==0.2.2")
MIN_PYTHON = (3, 12)


def unavailable(message: str) -> NoReturn:
    """Skip on a developer's machine; fail in CI, where every tool must be there."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _python_ok(candidate: str) -> bool:
    try:
        done = subprocess.run([candidate, "-c", f"import sys, venv; sys.exit(sys.version_info < {MIN_PYTHON!r})"],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_new_python() -> str | None:
    """A Python >= 3.12 that really runs (a pyenv shim on PATH may only print an error)."""
    candidates: list[str] = []
    if sys.version_info >= MIN_PYTHON:
        candidates.append(sys.executable)
    for name in ("python3.12", "python3.13", "python3.14"):
        found = shutil.which(name)
        if found:
            candidates.append(found)
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"), "/root/.pyenv"]
    for root in dict.fromkeys(r for r in roots if r):
        candidates.extend(sorted(glob.glob(f"{root}/versions/3.1[2-9]*/bin/python3"), reverse=True))
    return next((c for c in dict.fromkeys(candidates) if _python_ok(c)), None)


def helm_python() -> str:
    """The helm venv's interpreter, made (once, under a lock) if missing or out of date."""
    CACHE.mkdir(exist_ok=True)
    ignore = CACHE / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# tools the tests install for themselves\n*\n")
    python = HELM_VENV / "bin" / "python"
    stamp = HELM_VENV / ".installed"
    wanted = "\n".join(HELM_PACKAGES)
    with (CACHE / "helm-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return str(python)
        base = find_new_python()
        if base is None:
            unavailable("Helm's library needs Python >= 3.12 (python3.12 on PATH or under pyenv); none found")
        shutil.rmtree(HELM_VENV, ignore_errors=True)
        steps = [[base, "-m", "venv", str(HELM_VENV)],
                 [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *HELM_PACKAGES]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                unavailable(f"could not set up the helm venv ({' '.join(step)}):\n{done.stderr[-3000:]}")
        stamp.write_text(wanted)
    return str(python)


def helm(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run lint/render requests through helm_driver.py in the helm venv; one answer per request."""
    home = CACHE / "helm-home"
    env = {**os.environ,
           "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data")}
    done = subprocess.run([helm_python(), str(DRIVER)], input=json.dumps(requests), capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, f"helm driver failed:\n{done.stderr[-4000:]}"
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    return answers


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`, maps merged key by key, as Helm merges values."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
