"""An attempt's egress: an internal Docker network and the tinyproxy container that guards it.

Blocking (docker-py): call from a thread. Per attempt, so attempts cannot reach each
other and each proxy carries only its own allowlist:

    sandbox ──(internal network kilod-net-<attempt>: no route out)──> kilod-proxy
    kilod-proxy ──(default bridge)──> the allowed hosts

Names are deterministic and everything is labelled with the attempt and instance,
so a restarted daemon adopts what exists and the reconciler's label sweep removes
the proxy with the sandbox; the network goes with the last container on it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import LogConfig

from kilod.environments.allowlist import (
    PROXY_ALIAS,
    REFUSED,
    REFUSED_PORT,
    filter_lines,
    proxy_config,
    proxy_env,
)
from kilod.environments.subnets import SubnetPool
from kilod.errors import Unavailable

log = logging.getLogger(__name__)

LABEL_ATTEMPT = "kilod.attempt"
LABEL_CARD = "kilod.card"
LABEL_INSTANCE = "kilod.instance"
LABEL_ROLE = "kilod.role"
OUTSIDE_NETWORK = "bridge"


def network_name(attempt_id: str) -> str:
    return f"kilod-net-{attempt_id}"


def proxy_name(attempt_id: str) -> str:
    return f"kilod-proxy-{attempt_id}"


@dataclass(frozen=True)
class Refusal:
    timestamp: str  # docker's RFC 3339 nano timestamp of the log line: orders and de-duplicates
    host: str       # the host refused, or ":<port>" when CONNECT went to a port other than 443


@dataclass(frozen=True)
class EgressAttachment:
    network: str
    env: dict[str, str]


class Egress:
    def __init__(self, client: docker.DockerClient, image: str, instance: str, subnets: SubnetPool) -> None:
        self.client = client
        self.image = image
        self.instance = instance
        self.subnets = subnets  # each network gets a /28 of kilod's pool, not one of Docker's ~30 defaults

    def _labels(self, attempt_id: str, card_id: str, role: str) -> dict[str, str]:
        return {LABEL_ATTEMPT: attempt_id, LABEL_CARD: card_id, LABEL_INSTANCE: self.instance, LABEL_ROLE: role}

    def ensure(self, attempt_id: str, card_id: str, allow: list[str]) -> EgressAttachment:
        """The attempt's internal network with a running proxy on it (created, adopted or restarted)."""
        network = self.ensure_network(attempt_id, card_id)
        proxy = self._proxy(attempt_id, card_id, allow, network)
        if proxy.status != "running":
            try:
                proxy.start()
            except docker.errors.APIError as exc:
                raise Unavailable(f"cannot start the egress proxy {proxy.name}: {exc.explanation or exc}") from exc
        return EgressAttachment(network=str(network.name), env=proxy_env().variables())

    def ensure_network(self, attempt_id: str, card_id: str) -> Network:
        """The attempt's internal network on its own /28 (created, or adopted when it is the attempt's)."""
        name = network_name(attempt_id)
        with contextlib.suppress(docker.errors.NotFound):
            return self._owned(self.client.networks.get(name), attempt_id)
        try:
            # internal: Docker gives it no gateway, so nothing on it can route out
            return self.subnets.create(name, lambda ipam: self.client.networks.create(
                name, driver="bridge", internal=True, check_duplicate=True, ipam=ipam,
                labels=self._labels(attempt_id, card_id, "network")))
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                return self._owned(self.client.networks.get(name), attempt_id)
            raise Unavailable(f"cannot create the network {name}: {exc.explanation or exc}") from exc

    def _owned(self, network: Network, attempt_id: str) -> Network:
        labels = network.attrs.get("Labels") or {}
        if labels.get(LABEL_ATTEMPT) != attempt_id or labels.get(LABEL_INSTANCE) != self.instance:
            raise Unavailable(f"a network named {network.name} exists but is not this attempt's; remove it by hand")
        if not network.attrs.get("Internal"):
            raise Unavailable(f"the network {network.name} is not internal; remove it by hand")
        return network

    def _proxy(self, attempt_id: str, card_id: str, allow: list[str], network: Network) -> Container:
        name = proxy_name(attempt_id)
        with contextlib.suppress(docker.errors.NotFound):
            existing = self.client.containers.get(name)
            if (existing.labels or {}).get(LABEL_ATTEMPT) != attempt_id:
                raise Unavailable(f"a container named {name} exists but is not this attempt's proxy")
            return existing
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise Unavailable(f"the egress proxy image '{self.image}' is not present; "
                              "build it with `kilod images build proxy`") from None
        subnets = [c.get("Subnet") for c in (network.attrs.get("IPAM") or {}).get("Config") or [] if c.get("Subnet")]
        if not subnets:
            raise Unavailable(f"the network {network.name} has no subnet; cannot restrict the proxy's clients")
        try:
            container = self.client.containers.create(
                self.image,
                name=name,
                labels=self._labels(attempt_id, card_id, "proxy"),
                environment={"KILOD_PROXY_CONFIG": proxy_config(subnets[0]),
                             "KILOD_PROXY_FILTER": filter_lines(allow)},
                network=OUTSIDE_NETWORK,
                read_only=True,
                tmpfs={"/tmp": "size=1m,mode=1777"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                mem_limit="64m",
                pids_limit=64,
                nano_cpus=int(0.5e9),
                log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "2"}),
            )
        except docker.errors.APIError as exc:
            raise Unavailable(f"cannot create the egress proxy {name}: {exc.explanation or exc}") from exc
        network.connect(container, aliases=[PROXY_ALIAS])
        return container

    def refusals(self, attempt_id: str, after: str = "") -> list[Refusal]:
        """Requests the attempt's proxy refused, logged after the timestamp `after` (all when empty)."""
        try:
            container = self.client.containers.get(proxy_name(attempt_id))
            since = _since(after)
            raw = (container.logs(stdout=True, stderr=True, timestamps=True, since=since) if since
                   else container.logs(stdout=True, stderr=True, timestamps=True))
        except docker.errors.NotFound:
            return []
        except docker.errors.APIError as exc:
            log.warning("cannot read the egress proxy's log: %s", exc)
            return []
        found = []
        for line in raw.decode("utf-8", errors="replace").splitlines():
            stamp, _, message = line.partition(" ")
            if after and stamp <= after:
                continue
            if match := REFUSED.search(message):
                found.append(Refusal(stamp, match["host"]))
            elif match := REFUSED_PORT.search(message):
                found.append(Refusal(stamp, f":{match['port']}"))
        return found

    def release(self, attempt_id: str) -> None:
        """Remove the attempt's proxy, then its network once nothing else is attached to it."""
        with contextlib.suppress(docker.errors.NotFound):
            proxy = self.client.containers.get(proxy_name(attempt_id))
            if (proxy.labels or {}).get(LABEL_ROLE) == "proxy":
                proxy.remove(force=True)
        remove_network_if_unused(self.client, attempt_id)


def remove_network_if_unused(client: docker.DockerClient, attempt_id: str) -> bool:
    """Drop the attempt's labelled network when no container is on it; True if it was removed."""
    try:
        network = client.networks.get(network_name(attempt_id))
    except docker.errors.NotFound:
        return False
    if (network.attrs.get("Labels") or {}).get(LABEL_ATTEMPT) != attempt_id or network.attrs.get("Containers"):
        return False
    try:
        network.remove()
    except docker.errors.APIError:  # attached meanwhile, or removed by a concurrent sweep
        return False
    return True


def _since(after: str) -> datetime | None:
    """docker's `since` has whole seconds (a naive datetime is UTC); lines in that second are filtered again."""
    try:
        return datetime.fromisoformat(after[:19]) if after else None
    except ValueError:
        return None
