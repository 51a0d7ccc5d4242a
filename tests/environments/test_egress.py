"""Egress allowlist end to end: a real daemon, real Docker, tinyproxy, and PyPI through the machine's TLS proxy.

Only PyPI is contacted; the refused host is under `.invalid`, so even a wrong proxy
would send nothing out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.test_metrics import samples, scrape_text, value
from tests.environments.conftest import trust
from tests.kilod_testing import DaemonProcess, make_repo

ALLOW = ["pypi.org", "files.pythonhosted.org"]
DOWNLOAD = "python3 -m pip download --no-deps --retries 1 --timeout 30 -d /tmp/dl six==1.16.0"
REFUSED = ("python3 -m pip download --no-deps --retries 1 --timeout 10 -d /tmp/dl2 "
           "--index-url https://packages.refused.invalid/simple six")
NO_PROXY_ROUTE = ("env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy python3 -c "
                  "\"import socket; socket.create_connection(('151.101.0.223', 443), timeout=5)\"")


def toml(network: str, setup: list[str], checks: dict[str, str]) -> str:
    lines = [f"network = {network}", f"setup = {setup!r}".replace("'", '"')]
    for name, run in checks.items():
        lines += ["[[checks]]", f'name = "{name}"', f"run = '''{run}'''"]
    return "\n".join(lines) + "\n"


def run_card(daemon: DaemonProcess, repo: Path, **extra: Any) -> dict[str, Any]:
    trust(daemon, repo)
    card = daemon.request("POST", "/v1/cards", {"prompt": "egress", "repo": str(repo),
                                                "models": ["scripted/steady"], **extra})
    return daemon.wait_state(card["attempts"][0]["id"], "review", "failed", timeout=300)


def checks_of(daemon: DaemonProcess, attempt_id: str) -> dict[str, dict[str, Any]]:
    return {e["payload"]["name"]: e["payload"] for e in daemon.events(attempt_id) if e["kind"] == "check"}


@pytest.fixture
def allowlisted_repo(tmp_path: Path) -> Path:
    text = toml(str(ALLOW).replace("'", '"'), [DOWNLOAD],
                {"refused": REFUSED, "no-route": NO_PROXY_ROUTE, "downloaded": "ls /tmp/dl"})
    return make_repo(tmp_path / "repo", {"README.md": "# egress\n", ".kilod.toml": text})


def test_allowlisted_pypi_works_through_the_proxy_and_other_hosts_are_refused(
        env_daemon: Callable[..., DaemonProcess], allowlisted_repo: Path) -> None:
    daemon = env_daemon()
    attempt = run_card(daemon, allowlisted_repo)
    assert attempt["state"] == "review", attempt["error"]

    setup = [e["payload"] for e in daemon.events(attempt["id"]) if e["kind"] == "log"  # not its live output
             and e["payload"].get("step") == "setup" and "command" in e["payload"]
             and e["payload"].get("status") != "running"]  # results, not starts
    assert setup and setup[0]["status"] == "passed", setup
    checks = checks_of(daemon, attempt["id"])
    assert checks["downloaded"]["status"] == "passed"
    assert "six-1.16.0" in checks["downloaded"]["output_tail"]
    # the proxy answered the CONNECT to a host off the list with 403, and pip says so
    assert checks["refused"]["status"] == "failed"
    assert "403" in checks["refused"]["output_tail"] and "Filtered" in checks["refused"]["output_tail"]
    # without the proxy variables there is no route out at all
    assert checks["no-route"]["status"] == "failed"
    assert "unreachable" in checks["no-route"]["output_tail"].lower() or \
        "timed out" in checks["no-route"]["output_tail"].lower()

    refused = daemon.wait_for(lambda: [e["payload"] for e in daemon.events(attempt["id"])
                                       if "egress_refused" in e["payload"]], 30, "the refusal event")
    assert {r["egress_refused"] for r in refused} == {"packages.refused.invalid"}
    assert "not on the network allowlist" in refused[0]["message"]
    assert value(samples(scrape_text(daemon)), "kilod_egress_refused_total") >= 1

    client = docker.from_env()
    sandbox = client.containers.get(f"kilod-{attempt['id']}")
    network_name = sandbox.attrs["HostConfig"]["NetworkMode"]
    assert network_name == f"kilod-net-{attempt['id']}"
    network = client.networks.get(network_name)
    assert network.attrs["Internal"] is True
    assert network.attrs["Labels"]["kilod.instance"] == daemon.instance
    proxy = client.containers.get(f"kilod-proxy-{attempt['id']}")
    assert proxy.labels["kilod.instance"] == daemon.instance and proxy.labels["kilod.role"] == "proxy"
    assert proxy.attrs["HostConfig"]["CapDrop"] == ["ALL"] and proxy.attrs["HostConfig"]["ReadonlyRootfs"]
    env = dict(v.split("=", 1) for v in sandbox.attrs["Config"]["Env"])
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://kilod-proxy:8888"
    assert env["PIP_CERT"] == "/etc/kilod/ca-bundle.pem"

    # discarding the attempt removes its sandbox; the reconciler then removes the proxy and the network
    daemon.request("POST", f"/v1/attempts/{attempt['id']}/discard")
    # the list's own fields (containers.list inspects each one, and the one being removed may be gone by then)
    daemon.wait_for(lambda: not client.api.containers(all=True, filters={"name": f"kilod-proxy-{attempt['id']}"}),
                    60, "the proxy to be removed")
    daemon.wait_for(lambda: not client.networks.list(names=[network_name]), 30, "the network to be removed")
    client.close()


def test_a_card_overrides_the_repository_network(env_daemon: Callable[..., DaemonProcess],
                                                 allowlisted_repo: Path) -> None:
    daemon = env_daemon()
    trust(daemon, allowlisted_repo)
    card = daemon.request("POST", "/v1/cards", {"prompt": "p", "repo": str(allowlisted_repo),
                                                "models": ["scripted/steady"], "network": False,
                                                "settings": {"setup": [], "checks": []}})
    assert card["network"] is False and card["settings"]["network"] is False
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review")
    sandbox = docker.from_env().containers.get(f"kilod-{attempt['id']}")
    assert sandbox.attrs["HostConfig"]["NetworkMode"] == "none"

    listed = daemon.request("POST", "/v1/cards", {"prompt": "p", "repo": str(allowlisted_repo),
                                                  "models": ["scripted/steady"], "network": ["PyPI.org", "*.npmjs.org"],
                                                  "settings": {"setup": [], "checks": []}})
    assert listed["network"] is False and listed["settings"]["network"] == ["pypi.org", "*.npmjs.org"]


def test_a_bad_allowlist_is_refused_with_the_pattern_named(env_daemon: Callable[..., DaemonProcess],
                                                           tmp_path: Path) -> None:
    daemon = env_daemon()
    repo = make_repo(tmp_path / "bad", {".kilod.toml": 'network = ["https://pypi.org/simple"]\n'})
    # in the file: the card keeps the safe defaults and carries the error (file, key and line)
    card = daemon.request("POST", "/v1/cards", {"prompt": "p", "repo": str(repo), "models": ["scripted/steady"]})
    error = card["settings_source"]["error"]
    assert "https://pypi.org/simple" in error and ".kilod.toml:1" in error
    assert card["settings"]["network"] is False
    # typed into a request: refused with the pattern named, nothing created
    with pytest.raises(Exception) as caught:
        daemon.request("POST", "/v1/cards", {"prompt": "p", "repo": str(repo), "models": ["scripted/steady"],
                                             "network": ["pypi.org:443"]})
    assert getattr(caught.value, "status", None) == 400 and "pypi.org:443" in str(caught.value)
    assert len(daemon.request("GET", "/v1/cards")["cards"]) == 1


def test_ctl_new_allow_sends_an_allowlist(env_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    daemon = env_daemon()
    repo = make_repo(tmp_path / "plain")
    made = subprocess.run([sys.executable, "-m", "kilod_cli.main", "ctl", "new", "p", "--repo", str(repo),
                           "-m", "scripted/steady", "--allow", "PyPI.org", "--allow", "*.npmjs.org", "--json"],
                          capture_output=True, text=True, timeout=60,
                          env={**daemon.env, "KILOD_SOCKET": str(daemon.socket)})
    assert made.returncode == 0, made.stderr
    card = json.loads(made.stdout)
    assert card["settings"]["network"] == ["pypi.org", "*.npmjs.org"] and card["network"] is False
    daemon.wait_state(card["attempts"][0]["id"], "review")
