"""Warm dependency caches: named volumes per repository and image family, shared by its attempts.

A sandbox's HOME is /tmp, so each tool's cache is mounted where the tool looks with
that HOME, and the variable that pins it is set too (an image may set its own).
Volumes start root-owned; a short labelled init container with only CAP_CHOWN hands
their top directories to the sandbox user, once per volume per daemon run.

`cache_paths` (pure) validates `.kilod.toml` `caches = [...]`; the rest is docker-py
and blocking: call it from a thread.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import docker
import docker.errors

from kilod.errors import Unavailable

log = logging.getLogger(__name__)

# `docker system df` runs one at a time engine-wide: how long to wait for another one to end
DF_TRIES = 10
DF_PAUSE = 0.5

LABEL_INSTANCE = "kilod.instance"
LABEL_CACHE = "kilod.cache"          # the tool (pip, npm, …) or "path" for a repository's own entry
LABEL_REPO = "kilod.repo"
LABEL_FAMILY = "kilod.image-family"
LABEL_PATH = "kilod.cache-path"
LABEL_ROLE = "kilod.role"


@dataclass(frozen=True)
class Tool:
    name: str
    path: str
    env: tuple[tuple[str, str], ...]


TOOLS = (
    Tool("pip", "/tmp/.cache/pip", (("PIP_CACHE_DIR", "/tmp/.cache/pip"),)),
    Tool("uv", "/tmp/.cache/uv", (("UV_CACHE_DIR", "/tmp/.cache/uv"),)),
    Tool("npm", "/tmp/.npm", (("npm_config_cache", "/tmp/.npm"),)),
    Tool("cargo", "/tmp/.cargo/registry", (("CARGO_HOME", "/tmp/.cargo"),)),
    Tool("go", "/tmp/go/pkg/mod", (("GOPATH", "/tmp/go"), ("GOMODCACHE", "/tmp/go/pkg/mod"))),
    # Java takes user.home from the passwd entry, not $HOME: name the repository explicitly
    Tool("maven", "/tmp/.m2/repository", (("MAVEN_OPTS", "-Dmaven.repo.local=/tmp/.m2/repository"),)),
    Tool("gradle", "/tmp/.gradle/caches", (("GRADLE_USER_HOME", "/tmp/.gradle"),)),
)
MAX_EXTRA = 16
FORBIDDEN_ROOTS = ("/workspace", "/proc", "/sys", "/dev", "/etc")


class CachePathError(ValueError):
    """A `caches` entry that is not an absolute path kilod may mount over."""


def cache_paths(paths: list[str]) -> list[str]:
    if len(paths) > MAX_EXTRA:
        raise CachePathError(f"at most {MAX_EXTRA} extra cache paths, got {len(paths)}")
    clean: dict[str, None] = {}
    for raw in paths:
        path = PurePosixPath(raw)
        if not raw.startswith("/") or ".." in path.parts or str(path) == "/":
            raise CachePathError(f"cache path '{raw}' must be an absolute path below / without '..'")
        for root in FORBIDDEN_ROOTS:
            if path == PurePosixPath(root) or PurePosixPath(root) in path.parents:
                raise CachePathError(f"cache path '{raw}' is inside {root}, which kilod does not let a cache shadow")
        clean[str(path)] = None
    return list(clean)


def image_family(image: str) -> str:
    """`python:3.12-slim` → `python`, `kilod/sandbox:latest` → `kilod/sandbox`; digests and tags dropped."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def _key(repo: str, family: str) -> str:
    return hashlib.sha256(f"{repo}\0{family}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CacheVolume:
    name: str
    target: str
    tool: str


@dataclass(frozen=True)
class CachePlan:
    volumes: tuple[CacheVolume, ...]
    env: dict[str, str]


def plan(instance: str, repo: str, image: str, extra: list[str]) -> CachePlan:
    """Which volumes an attempt of `repo` in `image` mounts where, and the variables that go with them."""
    key = _key(repo, image_family(image))
    volumes = [CacheVolume(f"kilod-cache-{instance}-{key}-{t.name}", t.path, t.name) for t in TOOLS]
    volumes += [CacheVolume(f"kilod-cache-{instance}-{key}-p{hashlib.sha256(p.encode()).hexdigest()[:8]}", p, "path")
                for p in extra]
    env = {k: v for t in TOOLS for k, v in t.env}
    return CachePlan(tuple(volumes), env)


@dataclass(frozen=True)
class CacheInfo:
    name: str
    tool: str
    repo: str
    image_family: str
    path: str
    size_bytes: int | None
    in_use: int | None


class Caches:
    def __init__(self, client: docker.DockerClient, instance: str, init_image: str) -> None:
        self.client = client
        self.instance = instance
        self.init_image = init_image
        self._ready: set[tuple[str, int, int]] = set()
        self._lock = threading.Lock()

    def ensure(self, cache_plan: CachePlan, repo: str, image: str, uid: int, gid: int) -> None:
        """Create missing volumes and hand them to the sandbox user (serialised: attempts of one repo race)."""
        with self._lock:
            pending = [v for v in cache_plan.volumes if (v.name, uid, gid) not in self._ready]
            if not pending:
                return
            for volume in pending:
                self._volume(volume, repo, image)
            self._chown(pending, uid, gid)
            self._ready.update((v.name, uid, gid) for v in pending)

    def _volume(self, volume: CacheVolume, repo: str, image: str) -> None:
        try:
            existing = self.client.volumes.get(volume.name)
        except docker.errors.NotFound:
            labels = {LABEL_INSTANCE: self.instance, LABEL_CACHE: volume.tool, LABEL_REPO: repo,
                      LABEL_FAMILY: image_family(image), LABEL_PATH: volume.target}
            try:
                self.client.volumes.create(volume.name, labels=labels)
            except docker.errors.APIError as exc:
                raise Unavailable(f"cannot create the cache volume {volume.name}: {exc.explanation or exc}") from exc
            return
        if (existing.attrs.get("Labels") or {}).get(LABEL_INSTANCE) != self.instance:
            raise Unavailable(f"a volume named {volume.name} exists but is not this daemon's; remove it by hand")

    def _chown(self, volumes: list[CacheVolume], uid: int, gid: int) -> None:
        mounts = {f"/c/{i}": v.name for i, v in enumerate(volumes)}
        command = ["chown", f"{uid}:{gid}", *mounts]
        try:
            self.client.containers.run(
                self.init_image, command, user="0:0", entrypoint=[], network_mode="none",
                cap_drop=["ALL"], cap_add=["CHOWN"], security_opt=["no-new-privileges"],
                volumes={name: {"bind": target, "mode": "rw"} for target, name in mounts.items()},
                labels={LABEL_INSTANCE: self.instance, LABEL_ROLE: "cache-init"}, remove=True,
                mem_limit="64m", pids_limit=16,
            )
        except docker.errors.ContainerError as exc:
            raise Unavailable(f"cannot hand the cache volumes to uid {uid}: {exc.stderr!r}") from exc
        except docker.errors.APIError as exc:
            raise Unavailable(f"cannot run the cache init container: {exc.explanation or exc}") from exc

    def inventory(self, with_sizes: bool = True) -> list[CacheInfo]:
        volumes = self.client.volumes.list(filters={"label": [f"{LABEL_INSTANCE}={self.instance}", LABEL_CACHE]})
        usage: dict[str, tuple[int | None, int | None]] = {}
        if with_sizes and volumes:
            for item in self._disk_usage().get("Volumes") or []:
                data = item.get("UsageData") or {}
                size, refs = data.get("Size"), data.get("RefCount")
                usage[item.get("Name", "")] = (size if size is not None and size >= 0 else None,
                                               refs if refs is not None and refs >= 0 else None)
        found = []
        for volume in volumes:
            labels = volume.attrs.get("Labels") or {}
            size, refs = usage.get(str(volume.name), (None, None))
            found.append(CacheInfo(name=str(volume.name), tool=labels.get(LABEL_CACHE, ""),
                                   repo=labels.get(LABEL_REPO, ""), image_family=labels.get(LABEL_FAMILY, ""),
                                   path=labels.get(LABEL_PATH, ""), size_bytes=size, in_use=refs))
        return sorted(found, key=lambda c: (c.repo, c.image_family, c.tool, c.path))

    def _disk_usage(self) -> dict[str, Any]:
        """The engine's `system df`; {} (sizes unknown) while another one keeps running.

        The engine computes one at a time and refuses the rest ("a disk usage operation is
        already running", a 500), and a df over large volumes takes a while, even after the
        client that asked has gone: wait a few seconds for it, then answer without sizes.
        """
        for tried in range(1, DF_TRIES + 1):
            try:
                return dict(self.client.df())
            except docker.errors.APIError as exc:
                if "already running" not in str(exc.explanation or exc):
                    raise Unavailable(f"cannot read the engine's disk usage: {exc.explanation or exc}") from exc
            if tried < DF_TRIES:
                time.sleep(DF_PAUSE)
        log.info("cache sizes left out: the engine is still busy with another disk usage operation")
        return {}

    def clear(self, repo: str | None = None) -> tuple[list[str], list[str]]:
        """Remove this daemon's cache volumes (of one repository); returns (removed, in use and kept)."""
        removed, busy = [], []
        with self._lock:
            for info in self.inventory(with_sizes=False):
                if repo is not None and info.repo != repo:
                    continue
                try:
                    self.client.volumes.get(info.name).remove()
                except docker.errors.NotFound:
                    continue
                except docker.errors.APIError as exc:
                    if exc.status_code == 409:  # mounted by a sandbox: its attempt still needs it
                        busy.append(info.name)
                        continue
                    raise Unavailable(f"cannot remove {info.name}: {exc.explanation or exc}") from exc
                removed.append(info.name)
                self._ready = {r for r in self._ready if r[0] != info.name}
        return removed, busy
