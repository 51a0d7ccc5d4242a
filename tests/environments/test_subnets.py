"""Egress networks get /28s of kilod's own pool, so more allowlisted attempts run at once than Docker's ~30 pools.

The networks are created the way an attempt's egress creates them (no proxy, no
sandbox: a network costs milliseconds), labelled with a test instance and removed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import docker
import docker.errors
import pytest
from docker.types import IPAMConfig, IPAMPool

from kilod.environments.egress import Egress
from kilod.environments.subnets import SETTING, SubnetPool, free_subnets, parse_pool
from kilod.errors import Unavailable
from tests.kilod_testing import new_instance, remove_labelled

# inside the default pool's range (172.31.240.0/20): a part no test daemon of this run fills up
POOL = "172.31.252.0/22"     # 64 /28s


@pytest.fixture
def instance() -> Iterator[str]:
    name = new_instance()
    yield name
    remove_labelled(name)


def egress(client: docker.DockerClient, instance: str, pool: str) -> Egress:
    return Egress(client, "unused-proxy-image", instance, SubnetPool(client, parse_pool(pool)))


def subnet_of(network: object) -> ipaddress.IPv4Network:
    config = network.attrs["IPAM"]["Config"]  # type: ignore[attr-defined]
    return ipaddress.IPv4Network(config[0]["Subnet"])


def test_forty_allowlisted_attempts_each_get_an_internal_network_of_their_own(instance: str) -> None:
    client = docker.from_env()
    try:
        made = egress(client, instance, POOL)
        networks = [made.ensure_network(f"{instance}-{n}", "card") for n in range(40)]  # Docker's pools: ~30
        subnets = [subnet_of(n) for n in networks]
        assert len(set(subnets)) == 40
        assert all(s.prefixlen == 28 and s.subnet_of(ipaddress.IPv4Network(POOL)) for s in subnets)
        assert all(n.attrs["Internal"] for n in networks)
        # adopting: the same attempt's network again, not a new one
        assert made.ensure_network(f"{instance}-0", "card").id == networks[0].id
    finally:
        client.close()


def test_a_subnet_taken_by_any_other_network_is_skipped(instance: str) -> None:
    client = docker.from_env()
    pool = parse_pool(POOL)
    first = next(pool.subnets(new_prefix=28))
    try:
        # a network kilod did not make (a person's, another daemon's) already on the pool's first /28
        client.networks.create(f"{instance}-theirs", driver="bridge", internal=True,
                               labels={"kilod.instance": instance},
                               ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(first))]))
        network = egress(client, instance, POOL).ensure_network(f"{instance}-mine", "card")
        assert subnet_of(network) != first and not subnet_of(network).overlaps(first)
    finally:
        client.close()


def test_a_full_pool_is_a_clear_error_naming_the_setting(instance: str) -> None:
    client = docker.from_env()
    try:
        made = egress(client, instance, "172.31.251.224/27")   # room for two
        made.ensure_network(f"{instance}-a", "card")
        made.ensure_network(f"{instance}-b", "card")
        with pytest.raises(Unavailable) as refused:
            made.ensure_network(f"{instance}-c", "card")
        assert f"all 2 /28 subnets of {SETTING}=172.31.251.224/27 are in use" in refused.value.message
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(f"kilod-net-{instance}-c")
    finally:
        client.close()


def test_the_pool_setting_is_checked() -> None:
    assert str(parse_pool(" 10.20.0.0/20 ")) == "10.20.0.0/20"
    for bad in ("10.20.0.1/20", "10.20.0.0/29", "fd00::/64", "nonsense"):
        with pytest.raises(ValueError, match=SETTING):
            parse_pool(bad)
    pool = parse_pool("10.0.0.0/26")
    used = [ipaddress.IPv4Network("10.0.0.16/28"), ipaddress.IPv4Network("10.0.0.0/30")]
    assert [str(s) for s in free_subnets(pool, used)] == ["10.0.0.32/28", "10.0.0.48/28"]
