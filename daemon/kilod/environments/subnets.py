"""Small subnets for egress networks, carved from a pool kilod owns (`KILOD_EGRESS_SUBNETS`).

Docker's default address pools hand each new network a /16 or /20: about 30 of them,
so the 31st concurrent allowlisted attempt would fail with "all predefined address
pools have been fully subnetted". An egress network holds two members (the sandbox and
its proxy), so kilod asks for a /28 (16 addresses) from its own pool instead, with an
explicit IPAM config: a /20 pool gives 256 networks.

A /28 is taken when it overlaps no network the engine has (any network: another
daemon's, a person's), so two daemons on one engine can share a pool. Two allocators
may still race for the same /28: the engine refuses the second create ("overlaps"),
and the loser tries the next free one. Blocking (docker-py): call from a thread.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network

import docker
import docker.errors
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from kilod.errors import Unavailable

PREFIX = 28          # 16 addresses: network, gateway, broadcast, the sandbox, its proxy, room to spare
SETTING = "KILOD_EGRESS_SUBNETS"
ATTEMPTS = 8         # creates lost to a concurrent allocator before giving up


def parse_pool(text: str) -> IPv4Network:
    """The setting's value: an IPv4 network at least as large as one /28."""
    try:
        pool = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{SETTING}: '{text}' is not an IPv4 network in CIDR form ({exc})") from None
    if not isinstance(pool, IPv4Network) or pool.prefixlen > PREFIX:
        raise ValueError(f"{SETTING}: '{text}' must be an IPv4 network of /{PREFIX} or larger")
    return pool


def used_subnets(client: docker.DockerClient) -> list[IPv4Network]:
    """Every IPv4 subnet of every network on the engine (what a new one must not overlap)."""
    found = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            try:
                subnet = ipaddress.ip_network(str(config.get("Subnet") or ""), strict=False)
            except ValueError:
                continue
            if isinstance(subnet, IPv4Network):
                found.append(subnet)
    return found


def free_subnets(pool: IPv4Network, used: list[IPv4Network]) -> Iterator[IPv4Network]:
    """The pool's /28s that overlap nothing in use, lowest first."""
    inside = [u for u in used if u.overlaps(pool)]
    for candidate in pool.subnets(new_prefix=PREFIX):
        if not any(candidate.overlaps(u) for u in inside):
            yield candidate


class SubnetPool:
    """Creates internal networks, each on its own /28 of the pool."""

    def __init__(self, client: docker.DockerClient, pool: IPv4Network) -> None:
        self.client = client
        self.pool = pool
        self._lock = threading.Lock()   # this daemon's attempts never race each other for a /28

    def capacity(self) -> int:
        return int(2 ** (PREFIX - self.pool.prefixlen))

    def create(self, name: str, create: Callable[[IPAMConfig], Network]) -> Network:
        """`create(ipam)` on the first free /28; a clear error naming the setting when the pool is full."""
        with self._lock:
            for _ in range(ATTEMPTS):
                subnet = next(free_subnets(self.pool, used_subnets(self.client)), None)
                if subnet is None:
                    raise Unavailable(
                        f"cannot create the egress network {name}: all {self.capacity()} /{PREFIX} subnets of "
                        f"{SETTING}={self.pool} are in use (one per running allowlisted attempt); "
                        f"set {SETTING} to a larger pool, or wait for attempts to finish")
                ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=str(subnet[1]))])
                try:
                    return create(ipam)
                except docker.errors.APIError as exc:
                    if "overlap" not in str(exc.explanation or exc).lower():
                        raise
                    # another daemon took this /28 between our look and our create: look again
            raise Unavailable(f"cannot create the egress network {name}: the subnets of {SETTING}={self.pool} "
                              "kept being taken by other networks meanwhile; try again")
