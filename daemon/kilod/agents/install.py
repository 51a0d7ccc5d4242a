"""`kilod agents install NAME`: put a real agent CLI in the data dir, never in an image.

Layout (the daemon mounts `<version>/` read-only at /opt/kilod/agents/<name> in any sandbox):

    <cache>/wheels/<wheel>.whl          downloaded once per machine (KILOD_AGENTS_CACHE,
                                        default $XDG_CACHE_HOME/kilod/agents); a cached wheel
                                        is used without asking the index, so CI and offline
                                        machines install from it
    <cache>/pip/                        pip's cache for the Python agents' venvs
    <cache>/wheelhouse/<project>-<ver>/ every wheel a Python agent's venv needed: a later venv
                                        (another interpreter, a reinstall) skips the index
    <data_dir>/agents/<name>/<version>/ the extracted executable (or venv) + kilod-agent.json
    <data_dir>/agents/<name>/current    the version attempts use

Binary agents (Claude Code, Codex) are extracted from their wheel. Python agents (aider,
mini-swe-agent) get a venv built by the sandbox image's own python3, in a throwaway
container of that image, at the very path it is mounted at later, so its scripts'
shebangs resolve in the attempt's container; images with another python3 get their own
(kilod.agents.venvs). Stdlib only (the CLI imports this): pip runs as a child process;
the throwaway container through kilod.agents.helperjob (docker-py in the daemon, in a child
process from the CLI: no `docker` binary anywhere), progress shown as it is printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kilod.agents.catalog import AgentPackage, package
from kilod.agents.helperjob import ChildContainers, Containers, HelperError, Job

MANIFEST = "kilod-agent.json"
Say = Callable[[str], None]
NO_PYTHON, NO_VENV = 90, 91   # exit codes of the venv build script
SANDBOX_UID_WHEN_ROOT = 1000  # as kilod.config: a root daemon's sandboxes run as this id
VENV_TIMEOUT = 1800.0         # seconds for one venv build (pip downloading hundreds of MB), then it is stopped


class InstallError(Exception):
    """An install that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    kind: str
    project: str
    entrypoint: str
    path: str
    size: int
    installed_at: float
    wheel: str | None = None
    image: str | None = None     # python agents: the image whose python3 built the venv
    python: str | None = None    # … and that python's version
    interpreter: str | None = None   # … its real path (the venv's links point there)
    libc: str | None = None          # … and its C library (compiled wheels need it)
    current: bool = False

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _stderr(message: str) -> None:
    print(f"[agents] {message}", file=sys.stderr, flush=True)


CACHE_ENV = "KILOD_AGENTS_CACHE"   # read here, not a Settings field: the CLI installs without the daemon


def cache_root() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kilod" / "agents"


def agents_root(data_dir: Path) -> Path:
    return data_dir / "agents"


# -- what is installed -------------------------------------------------------------

def _read_manifest(folder: Path) -> Installed | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
        return Installed(**{k: v for k, v in data.items() if k in Installed.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None


def current(data_dir: Path, name: str) -> Installed | None:
    """The version of `name` attempts use, or None when it is not installed."""
    base = agents_root(data_dir) / name
    try:
        version = (base / "current").read_text().strip()
    except OSError:
        return None
    found = _read_manifest(base / version) if version and "/" not in version else None
    return Installed(**{**asdict(found), "current": True}) if found else None


def list_installed(data_dir: Path) -> list[Installed]:
    root = agents_root(data_dir)
    found: list[Installed] = []
    for base in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        chosen = current(data_dir, base.name)
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            item = _read_manifest(folder)
            if item is not None:
                found.append(Installed(**{**asdict(item), "current": chosen is not None
                                          and chosen.version == item.version}))
    return found


# -- installing ----------------------------------------------------------------

def install(name: str, data_dir: Path, version: str | None = None, image: str | None = None,
            ca_bundle: Path | None = None, force: bool = False, say: Say = _stderr,
            containers: Containers | None = None) -> Installed:
    """Install `name` (at `version`, default the catalog's pin) and make it the current one.

    `containers` runs the Python agents' build container (default: docker-py in a child process).
    """
    containers = containers or ChildContainers(_instance(data_dir))
    try:
        spec = package(name)
    except ValueError as exc:
        raise InstallError(str(exc)) from None
    if version:
        spec = AgentPackage(**{**asdict(spec), "version": version})
    base = agents_root(data_dir) / spec.name
    target = base / spec.version
    existing = _read_manifest(target)
    other_image = existing is not None and spec.kind == "python" and image not in (None, existing.image)
    if existing is not None and not force and not other_image:
        say(f"{spec.name} {spec.version} is already installed at {target}")
    elif existing is not None and not force:
        # another image: its own venv only if its python3 differs (kilod.agents.venvs), the first one stays
        from kilod.agents.venvs import ensure

        _point(base, spec.version)
        assert image is not None
        made, built = ensure(data_dir, spec.name, image, trusted_image=True, ca_bundle=ca_bundle, say=say,
                             containers=containers)
        if not built:
            say(f"{spec.name} {spec.version} is already installed for {image}'s python3 at {made.path}")
        return replace(made, current=True)
    else:
        base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.version}-", dir=base))
        try:
            if spec.kind == "binary":
                made = _install_binary(spec, staging, say)
            else:
                made = build_venv(spec, staging, image or _default_image(), ca_bundle, say, containers=containers)
            made = replace(made, path=str(target))
            (staging / MANIFEST).write_text(json.dumps(made.to_json(), indent=2) + "\n")
            os.chmod(staging, 0o755)
            if target.exists() and not force:
                # another install of this version finished meanwhile: keep it (attempts may run it now)
                say(f"{spec.name} {spec.version} was installed meanwhile at {target}; keeping that one")
            else:
                if target.exists():
                    shutil.rmtree(target)
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _point(base, spec.version)
    installed = current(data_dir, spec.name)
    assert installed is not None
    say(f"{spec.name} {spec.version} ready ({installed.size / 1e6:.0f} MB) at {target}")
    return installed


def _point(base: Path, version: str) -> None:
    """Make `version` the one attempts use (an atomic rename)."""
    pointer = base / ".current.tmp"
    pointer.write_text(version + "\n")
    pointer.replace(base / "current")


def _install_binary(spec: AgentPackage, staging: Path, say: Say) -> Installed:
    wheel = cached_wheel(spec) or download_wheel(spec, say)
    size = _extract(wheel, spec.keep, staging, say)
    entry = staging / spec.entrypoint
    if not entry.is_file() or not os.access(entry, os.X_OK):
        raise InstallError(f"{wheel.name} has no executable {spec.keep}{spec.entrypoint}; "
                           f"is {spec.version} a version that ships the binary?")
    return Installed(spec.name, spec.version, spec.kind, spec.project, spec.entrypoint, "", size,
                     time.time(), wheel=wheel.name)


def _platforms() -> list[str]:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    return [f"manylinux_2_17_{machine}", f"manylinux2014_{machine}", f"musllinux_1_2_{machine}", f"linux_{machine}"]


def cached_wheel(spec: AgentPackage) -> Path | None:
    stem = spec.project.replace("-", "_")
    machine = _platforms()[-1].split("_", 1)[1]
    found = sorted((cache_root() / "wheels").glob(f"{stem}-{spec.version}-*{machine}*.whl"))
    return found[0] if found else None


def download_wheel(spec: AgentPackage, say: Say) -> Path:
    wheels = cache_root() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    say(f"downloading {spec.requirement} from the package index into {wheels} (once per machine)")
    # into a scratch folder first: an interrupted download must never look cached
    with tempfile.TemporaryDirectory(prefix=".download-", dir=wheels) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--progress-bar", "on", "--retries", "1", "-d", scratch, spec.requirement]
        for tag in _platforms():
            command[5:5] = ["--platform", tag]
        try:
            code = subprocess.call(command, stdout=sys.stderr)
        except FileNotFoundError:
            raise InstallError(f"cannot run pip with {sys.executable}") from None
        got = sorted(Path(scratch).glob("*.whl"))
        if code != 0 or not got:
            raise InstallError(
                f"could not download {spec.requirement} (pip exited {code}; see its output above). Offline? "
                f"Check the network or PIP_INDEX_URL, or put the wheel in {wheels} and run this again.")
        final = wheels / got[0].name
        got[0].replace(final)
    return final


def _extract(wheel: Path, keep: str, staging: Path, say: Say) -> int:
    """Copy the wheel's `keep/` folder into staging (prefix dropped); returns the bytes written."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InstallError(f"{wheel} is not a readable wheel ({exc}); delete it and run this again") from None
    with archive:
        members = [m for m in archive.infolist() if m.filename.startswith(keep) and not m.is_dir()
                   and not m.filename.endswith((".py", ".pyc"))]
        total = sum(m.file_size for m in members) or 1
        done, shown = 0, -1
        say(f"extracting {len(members)} files ({total / 1e6:.0f} MB) from {wheel.name}")
        for member in members:
            relative = Path(member.filename[len(keep):])
            if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                raise InstallError(f"{wheel.name} holds an unsafe path: {member.filename}")
            out = staging / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, out.open("wb") as sink:
                while chunk := source.read(4 << 20):
                    sink.write(chunk)
                    done += len(chunk)
                    percent = done * 100 // total
                    if percent // 10 != shown:
                        shown = percent // 10
                        say(f"  {percent:3d}%  {done / 1e6:.0f} / {total / 1e6:.0f} MB")
            executable = (member.external_attr >> 16) & 0o111
            os.chmod(out, 0o755 if executable else 0o644)
        for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            os.chmod(folder, 0o755)
    return done


# -- Python agents: a venv made by the image's own python3 ------------------------

def _instance(data_dir: Path | None = None) -> str:
    """The daemon's instance label for this data dir (as kilod.config.Settings): its helper containers carry it."""
    explicit = os.environ.get("KILOD_INSTANCE")
    if explicit or data_dir is None:
        return explicit or ""
    return "kilod-" + hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]


def _default_image() -> str:
    return os.environ.get("KILOD_SANDBOX_IMAGE") or "kilod/sandbox"


def _sandbox_ids() -> tuple[int, int]:
    explicit = os.environ.get("KILOD_SANDBOX_UID")
    if explicit:
        return int(explicit), int(explicit)
    uid = os.getuid()
    return (SANDBOX_UID_WHEN_ROOT, SANDBOX_UID_WHEN_ROOT) if uid == 0 else (uid, os.getgid())


# what the venv build (and the interpreter probe, kilod.agents.venvs) prints last: the interpreter itself,
# at its real path (the venv links to that path, so an image must have that very file)
INTERPRETER_JSON = (
    "import importlib.util, json, os, platform, sys; print(json.dumps({"
    "'path': os.path.realpath(sys.executable), 'version': '%d.%d.%d' % sys.version_info[:3], "
    "'libc': '-'.join(platform.libc_ver()) or 'unknown', "
    "'venv': all(importlib.util.find_spec(m) is not None for m in ('venv', 'ensurepip'))}))")
WHEELHOUSE = "/kilod-wheelhouse"   # <cache>/wheelhouse/<project>-<version>, shared by every interpreter


def wheelhouse(spec: AgentPackage) -> Path:
    """The agent's downloaded wheels (every dependency), kept once per machine so a venv for another
    interpreter, or a reinstall, reads them instead of the index; pip picks what fits each interpreter."""
    return cache_root() / "wheelhouse" / f"{spec.project}-{spec.version}"


def _venv_script(spec: AgentPackage, writable: bool) -> str:
    home = spec.mounted_at()
    pip = f"{home}/venv/bin/pip install --disable-pip-version-check --progress-bar off --no-index"
    # download into the shared wheelhouse only from kilod's own images; a repository's image
    # (its own python3) downloads into the throwaway container and leaves the cache as it was
    fetched = WHEELHOUSE if writable else "/tmp/kilod-download"
    return (
        f"command -v python3 >/dev/null 2>&1 || exit {NO_PYTHON}\n"
        "PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))') || exit 1\n"
        f'"$PY" -m venv {home}/venv >&2 || exit {NO_VENV}\n'
        "echo 'installing from the wheelhouse (no index)' >&2\n"
        f"{pip} --find-links {WHEELHOUSE} '{spec.requirement}' >&2 || {{\n"
        "  echo 'not all of it is in the wheelhouse: downloading' >&2\n"
        f"  {home}/venv/bin/pip download --disable-pip-version-check --progress-bar off -d {fetched} "
        f"'{spec.requirement}' >&2 &&\n"
        f"  {pip} --find-links {fetched} --find-links {WHEELHOUSE} '{spec.requirement}' >&2; }} || exit 1\n"
        f'"$PY" -c "{INTERPRETER_JSON}"\n'
    )


def build_venv(spec: AgentPackage, staging: Path, image: str, ca_bundle: Path | None, say: Say,
               writable_cache: bool = True, containers: Containers | None = None) -> Installed:
    """A venv of `spec` in `staging`, built by `image`'s python3 in a throwaway container, mounted where it runs."""
    pip_cache, wheels = cache_root() / "pip", wheelhouse(spec)
    for folder in (pip_cache, wheels):
        folder.mkdir(parents=True, exist_ok=True)
    uid, gid = _sandbox_ids()
    if os.getuid() == 0:
        for folder in (staging, pip_cache, wheels):
            os.chown(folder, uid, gid)
    mounts = [(str(staging), spec.mounted_at(), False), (str(wheels), WHEELHOUSE, not writable_cache)]
    env = {"HOME": "/tmp"}
    if writable_cache:
        mounts.append((str(pip_cache), "/kilod-pip-cache", False))
        env["PIP_CACHE_DIR"] = "/kilod-pip-cache"
    else:
        env["PIP_NO_CACHE_DIR"] = "1"
    bundle = ca_bundle or (Path(os.environ["KILOD_CA_BUNDLE"]) if os.environ.get("KILOD_CA_BUNDLE") else None)
    copied = staging.with_name(f"{staging.name}.ca.pem")
    if bundle is not None:
        if not bundle.is_file():
            raise InstallError(f"CA bundle {bundle} does not exist")
        # a copy beside the staging folder (in the data dir): the engine that mounts it may be another
        # machine's (the Helm chart's dind sidecar shares only the data dir), where `bundle` is not
        shutil.copyfile(bundle, copied)
        os.chmod(copied, 0o644)
        mounts.append((str(copied), "/etc/kilod-ca.pem", True))
        env.update(PIP_CERT="/etc/kilod-ca.pem", SSL_CERT_FILE="/etc/kilod-ca.pem")
    job = Job(image, _venv_script(spec, writable_cache), user=f"{uid}:{gid}", network="bridge", env=env,
              mounts=tuple(mounts), timeout=VENV_TIMEOUT)
    say(f"building a venv with {spec.requirement} for {image}'s python3 (in a throwaway container)")
    try:   # pip's progress reaches `say` line by line, as it happens
        finished = (containers or ChildContainers()).run(job, say)
    except HelperError as exc:
        raise InstallError(f"cannot build {spec.name}'s venv in {image}: {exc}") from None
    finally:
        copied.unlink(missing_ok=True)
    code, out = finished.code, finished.stdout
    if finished.timed_out:
        raise InstallError(f"installing {spec.requirement} in {image} took over {VENV_TIMEOUT:.0f} s and was "
                           "stopped (output above). A slow or blocked index? Check the network or PIP_INDEX_URL.")
    if code == NO_PYTHON:
        raise InstallError(f"image {image} has no python3: {spec.name} cannot run in it "
                           "(use an image with python3, or a binary agent: claude-code, codex)")
    if code == NO_VENV:
        raise InstallError(f"image {image}'s python3 cannot make a venv (on Debian: install python3-venv)")
    if code != 0:
        raise InstallError(f"installing {spec.requirement} in {image} failed (exit {code}; "
                           "output above). Offline? With a TLS-inspecting proxy, pass --ca-bundle or set "
                           "KILOD_CA_BUNDLE.")
    entry = staging / spec.entrypoint
    if not entry.is_file():
        raise InstallError(f"{spec.requirement} installed no {spec.entrypoint}")
    try:
        interpreter = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise InstallError(f"building {spec.name}'s venv in {image} did not say which python3 it used") from None
    size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file() and not p.is_symlink())
    return Installed(spec.name, spec.version, spec.kind, spec.project, spec.entrypoint, "", size, time.time(),
                     image=image, python=str(interpreter["version"]), interpreter=str(interpreter["path"]),
                     libc=str(interpreter["libc"]))
