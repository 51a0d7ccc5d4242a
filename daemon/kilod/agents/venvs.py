"""A Python agent's venv for whatever image an attempt runs in, keyed by that image's interpreter.

A venv runs only with the python3 that made it: `venv/bin/python` links to that
interpreter's path, its site-packages is for that version, and compiled wheels need that
C library. So a venv is keyed by the interpreter (real path, version, libc), probed once
per image id (a throwaway container, cached in `<data_dir>/agents/.interpreters.json`:
an image id never changes), and every image with the same interpreter shares one venv:
a repository's Dockerfile `FROM kilod/sandbox` uses the venv `kilod agents install` made.

    <data_dir>/agents/<name>/<version>/                    the first install (its image's interpreter)
    <data_dir>/agents/<name>/<version>.venvs/<key>/        one per other interpreter, built on demand
    <data_dir>/agents/<name>/<version>.venvs/<key>-<repo>/ … built by a repository's own image

Trust: a venv is code every later attempt with that interpreter runs. One built by
kilod's own sandbox image (or `kilod agents install`) is shared by all; one built by a
repository's image, whose python3 that repository's Dockerfile controls, is used only by
that repository's attempts, and its build cannot write to the machine's wheel cache.
Binary agents (Claude Code, Codex) are self-contained: the same install runs anywhere.
Stdlib only and blocking (the daemon calls it from a thread); containers run through
`Containers` (kilod.agents.helperjob): the daemon passes its docker-py one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from kilod.agents.catalog import AgentPackage, package
from kilod.agents.helperjob import ChildContainers, Containers, HelperError, Job
from kilod.agents.install import (
    INTERPRETER_JSON,
    MANIFEST,
    NO_PYTHON,
    Installed,
    InstallError,
    Say,
    _read_manifest,
    agents_root,
    build_venv,
    current,
)

PROBE_SCRIPT = f'command -v python3 >/dev/null 2>&1 || exit {NO_PYTHON}\nexec python3 -c "{INTERPRETER_JSON}"\n'
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


@dataclass(frozen=True)
class Interpreter:
    path: str        # real path: what a venv's links point at
    version: str
    libc: str
    venv: bool       # it can make a venv (Debian: python3-venv installed)

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.path}\0{self.version}\0{self.libc}".encode()).hexdigest()[:16]

    def describe(self) -> str:
        return f"python3 {self.version} at {self.path} ({self.libc})"


PROBE_TIMEOUT = 300.0   # seconds: python3 printing its own description (a cold engine may be slow to start it)


def _interpreter_of(data_dir: Path, installed: Installed, containers: Containers) -> Interpreter | None:
    if installed.interpreter is not None and installed.python is not None and installed.libc is not None:
        return Interpreter(installed.interpreter, installed.python, installed.libc, True)
    if installed.image is None:
        return None
    try:  # an install made before interpreters were recorded: ask the image it was built with
        return probe(data_dir, installed.image, containers)
    except InstallError:
        return None


def probe(data_dir: Path, image: str, containers: Containers | None = None) -> Interpreter | None:
    """The image's python3 (None: it has none), asked once per image id."""
    containers = containers or ChildContainers()
    try:
        ident = containers.image_id(image)
    except HelperError as exc:
        raise InstallError(str(exc)) from None
    cache = agents_root(data_dir) / ".interpreters.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if ident in known:
        found = known[ident]
        return Interpreter(**found) if found else None
    errors: list[str] = []
    try:
        result = containers.run(Job(ident, PROBE_SCRIPT, network="none", timeout=PROBE_TIMEOUT), errors.append)
    except HelperError as exc:
        raise InstallError(f"cannot ask image {image} for its python3: {exc}") from None
    stderr = "\n".join(errors)
    if result.code == NO_PYTHON:
        interpreter = None
    elif result.code != 0 or result.timed_out:
        raise InstallError(f"cannot ask image {image} for its python3 (exit {result.code}"
                           f"{', timed out' if result.timed_out else ''}): {stderr.strip()[-300:]}")
    else:
        try:
            data = json.loads(result.stdout.strip().splitlines()[-1])
            interpreter = Interpreter(str(data["path"]), str(data["version"]), str(data["libc"]), bool(data["venv"]))
        except (IndexError, KeyError, ValueError):
            raise InstallError(f"image {image}'s python3 did not describe itself: {result.stdout[-300:]}") from None
    known[ident] = asdict(interpreter) if interpreter else None
    cache.parent.mkdir(parents=True, exist_ok=True)
    scratch = cache.with_name(f".interpreters.{os.getpid()}.{threading.get_ident()}.tmp")
    scratch.write_text(json.dumps(known, indent=1) + "\n")
    scratch.replace(cache)   # concurrent probes: the last writer wins; a lost entry is probed again
    return interpreter


def _folder(data_dir: Path, spec: AgentPackage, version: str, key: str, repo: str | None) -> Path:
    suffix = f"-{hashlib.sha256(repo.encode()).hexdigest()[:12]}" if repo else ""
    return agents_root(data_dir) / spec.name / f"{version}.venvs" / f"{key}{suffix}"


def _required(data_dir: Path, name: str) -> tuple[AgentPackage, Installed]:
    spec = package(name)
    installed = current(data_dir, name)
    if installed is None:
        raise InstallError(f"agent '{name}' is not installed; run `kilod agents install {name}`")
    return spec, installed


def _usable(image: str, spec: AgentPackage, interpreter: Interpreter | None) -> Interpreter:
    if interpreter is None:
        raise InstallError(f"image {image} has no python3: {spec.name} cannot run in it (use an image with "
                           "python3 and python3-venv, or a binary agent: claude-code, codex)")
    if not interpreter.venv:
        raise InstallError(f"image {image}'s {interpreter.describe()} cannot make a venv for {spec.name} "
                           "(on Debian/Ubuntu: install python3-venv in the image)")
    return interpreter


def for_image(data_dir: Path, name: str, image: str, repo: str | None = None,
              containers: Containers | None = None) -> Installed | None:
    """The install of `name` that runs in `image` (None: a venv for its interpreter is not built yet)."""
    containers = containers or ChildContainers()
    spec, installed = _required(data_dir, name)
    if installed.kind != "python":
        return installed
    if installed.image == image:
        return installed
    interpreter = _usable(image, spec, probe(data_dir, image, containers))
    first = _interpreter_of(data_dir, installed, containers)
    if first is not None and first.key == interpreter.key:
        return installed
    for folder in (_folder(data_dir, spec, installed.version, interpreter.key, None),
                   *([_folder(data_dir, spec, installed.version, interpreter.key, repo)] if repo else [])):
        found = _read_manifest(folder)
        if found is not None:
            return found
    return None


def ensure(data_dir: Path, name: str, image: str, trusted_image: bool, repo: str | None = None,
           ca_bundle: Path | None = None, say: Say = lambda _: None,
           containers: Containers | None = None) -> tuple[Installed, bool]:
    """The install of `name` for `image`, its venv built now if missing; (install, whether it was built).

    `trusted_image`: kilod's own sandbox image (its venv is shared by every repository);
    otherwise the venv is `repo`'s alone.
    """
    containers = containers or ChildContainers()
    found = for_image(data_dir, name, image, repo, containers)
    if found is not None:
        return found, False
    spec, installed = _required(data_dir, name)
    interpreter = _usable(image, spec, probe(data_dir, image, containers))
    target = _folder(data_dir, spec, installed.version, interpreter.key, None if trusted_image else repo)
    with _guard:
        lock = _locks.setdefault(str(target), threading.Lock())
    with lock:  # two attempts needing the same venv: the second waits for the first build, then reuses it
        again = _read_manifest(target)
        if again is not None:
            return again, False
        say(f"installing agent {spec.name} {installed.version} for {interpreter.describe()} (image {image})")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
        try:
            version_spec = AgentPackage(**{**asdict(spec), "version": installed.version})
            made = build_venv(version_spec, staging, image, ca_bundle, say, writable_cache=trusted_image,
                              containers=containers)
            made = Installed(**{**asdict(made), "path": str(target)})
            (staging / MANIFEST).write_text(json.dumps(made.to_json(), indent=2) + "\n")
            os.chmod(staging, 0o755)
            staging.rename(target)   # whole or not at all: an interrupted build leaves only .building-*
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    say(f"{spec.name} {installed.version} ready for {interpreter.describe()} ({made.size / 1e6:.0f} MB)")
    return made, True
