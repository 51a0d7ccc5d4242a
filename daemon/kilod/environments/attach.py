"""What an attempt's container gets from its environment: egress, caches, CA files.

The one entry point the pipeline calls before creating a sandbox. It returns plain
data (mounts, variables, a network name) that the container spec carries; every
Docker object it needs (network, proxy, volumes) is made here, idempotently, so a
re-created container (after a restart, or on demand in review) gets the same.
Blocking: call it from a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker

from kilod.config import Settings
from kilod.domain import Card
from kilod.environments.caches import Caches, plan
from kilod.environments.certificates import CaFiles, prepare
from kilod.environments.egress import Egress
from kilod.environments.images import Images, recipe_of
from kilod.environments.subnets import SubnetPool, parse_pool
from kilod.git.paths import RepoPaths
from kilod.sandbox.base import SANDBOX_ENV, MountSpec


@dataclass(frozen=True)
class Attachment:
    mounts: tuple[MountSpec, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    network_name: str | None = None  # None: the spec's own choice (full bridge or none)


def allowlist_of(card_settings: dict[str, object]) -> list[str] | None:
    """The card's egress allowlist; None when it has full network or none (`network = true/false`)."""
    network = card_settings.get("network")
    if isinstance(network, list):
        return [str(h) for h in network] if network else None
    return None


class Environments:
    def __init__(self, settings: Settings, client: Callable[[], docker.DockerClient]) -> None:
        self.settings = settings
        self._client = client  # the Docker sandbox's client, made on first use
        self._ca: CaFiles | None = None
        self._caches: Caches | None = None
        self._egress: Egress | None = None
        self._images: Images | None = None
        if settings.extra_ca_certs is not None:
            self.ca_files()  # a wrong path stops the daemon at start, not every attempt later

    @property
    def images(self) -> Images:
        if self._images is None:
            self._images = Images(self._client(), self.settings.instance)
        return self._images

    def container_exists(self, name: str) -> bool:
        return bool(self._client().containers.list(all=True, filters={"name": f"^/{name}$"}))

    def ensure_image(self, card: Card, repo: RepoPaths, log: Callable[[str], None]) -> str:
        """The card's image: its repository's built one, its named one, or kilod's sandbox image."""
        recipe = recipe_of(card.settings)
        if recipe is not None:
            return self.images.ensure_built(repo, card.base_commit, recipe, log)
        named = card.settings.get("image")
        if named:
            self.images.ensure_named(str(named), log)
            return str(named)
        return self.settings.sandbox_image

    @property
    def egress(self) -> Egress:
        if self._egress is None:
            client = self._client()
            self._egress = Egress(client, self.settings.proxy_image, self.settings.instance,
                                  SubnetPool(client, parse_pool(self.settings.egress_subnets)))
        return self._egress

    @property
    def caches(self) -> Caches:
        if self._caches is None:
            self._caches = Caches(self._client(), self.settings.instance, self.settings.sandbox_image)
        return self._caches

    def ca_files(self) -> CaFiles | None:
        if self.settings.extra_ca_certs is None:
            return None
        if self._ca is None:
            self._ca = prepare(Path(self.settings.extra_ca_certs), self.settings.data_dir / "ca")
        return self._ca

    def attach(self, attempt_id: str, card_id: str, repo: str, image: str, card_settings: dict[str, object],
               uid: int, gid: int) -> Attachment:
        mounts: list[MountSpec] = []
        repo_env = card_settings.get("env")
        # the repository's variables first: kilod's own (CA, caches, proxy) must win
        env: dict[str, str] = ({str(k): str(v) for k, v in repo_env.items() if k not in SANDBOX_ENV}
                               if isinstance(repo_env, dict) else {})
        ca = self.ca_files()
        if ca is not None:
            mounts += [MountSpec(source=source, target=target) for source, target in ca.mounts()]
            env.update(ca.env())
        if self.settings.caches:
            extra = card_settings.get("caches")
            cache_plan = plan(self.settings.instance, repo, image,
                              [str(p) for p in extra] if isinstance(extra, list) else [])
            self.caches.ensure(cache_plan, repo, image, uid, gid)
            mounts += [MountSpec(source=v.name, target=v.target, kind="volume", read_only=False)
                       for v in cache_plan.volumes]
            env.update(cache_plan.env)
        network_name = None
        allow = allowlist_of(card_settings)
        if allow is not None:
            attached = self.egress.ensure(attempt_id, card_id, allow)
            network_name = attached.network
            env.update(attached.env)
        return Attachment(tuple(mounts), env, network_name)
