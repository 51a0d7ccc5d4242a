"""Egress allowlists: which hosts a sandbox may reach through kilod's proxy.

Pure: validates the patterns a repository or card gives (`network = ["pypi.org",
"*.npmjs.org"]`) and turns them into what tinyproxy reads (its configuration and an
anchored, extended-regex filter) and what the sandbox needs (proxy variables).
The Docker side lives in `kilod.environments.egress`.

A pattern is a host name (`pypi.org`: that host only) or `*.` and a domain
(`*.npmjs.org`: every host under it, not the domain itself), as NO_PROXY and
most allowlists read them. No ports, schemes or paths: the proxy filters on the
host, and CONNECT is allowed to port 443 only.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

PROXY_PORT = 8888
PROXY_ALIAS = "kilod-proxy"  # the proxy's name on the sandbox's internal network
HTTPS_PORTS = (443,)
MAX_HOSTS = 100

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")
# the one line tinyproxy logs for a request its filter refused (reqs.c, 1.10 and 1.11)
REFUSED = re.compile(r'Proxying refused on filtered (?:domain|url) "(?P<host>[^"]*)"')
REFUSED_PORT = re.compile(r"Refused CONNECT method on port (?P<port>\d+)")


class AllowlistError(ValueError):
    """A pattern that is not a host name or `*.domain`."""


def normalise(patterns: list[str]) -> list[str]:
    """Lower-cased, de-duplicated, validated patterns; AllowlistError names the bad one."""
    if len(patterns) > MAX_HOSTS:
        raise AllowlistError(f"at most {MAX_HOSTS} hosts in a network allowlist, got {len(patterns)}")
    seen: dict[str, None] = {}
    for raw in patterns:
        if not isinstance(raw, str):
            raise AllowlistError(f"a network allowlist holds host names, got {raw!r}")
        host = raw.strip().lower().rstrip(".")
        if not host or len(host) > 253 or not (_HOST.match(host) or _is_ip(host)):
            raise AllowlistError(
                f"'{raw}' is not a host name or '*.domain' (no scheme, port or path: 'pypi.org', '*.npmjs.org')")
        if host.startswith("*.") and "." not in host[2:]:
            raise AllowlistError(f"'{raw}' would allow a whole top-level domain; name the domain ('*.example.com')")
        seen[host] = None
    return list(seen)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def matches(pattern: str, host: str) -> bool:
    """The same rule the proxy's filter applies, for callers that want to explain it."""
    return re.fullmatch(_regex(pattern), host.lower().rstrip(".")) is not None


def _regex(pattern: str) -> str:
    # validated patterns hold only [a-z0-9.:*-]: '.' is the one character ERE reads specially
    if pattern.startswith("*."):
        return r"([a-z0-9-]+\.)+" + pattern[2:].replace(".", r"\.")
    return pattern.replace(".", r"\.")


def filter_lines(patterns: list[str]) -> str:
    """tinyproxy's filter file (FilterType ere): one anchored expression per pattern."""
    return "\n".join(f"^{_regex(p)}$" for p in patterns)


def proxy_config(client_subnet: str) -> str:
    """tinyproxy.conf: deny-by-default filter on the host, CONNECT to 443 only, clients of one subnet.

    `@FILTER@` is replaced by the container's entrypoint with where it wrote the filter.
    Logs go to stdout (no LogFile, no Syslog) at Notice, so `docker logs` shows refusals.
    """
    lines = [
        f"Port {PROXY_PORT}",
        "Timeout 600",
        "MaxClients 100",
        "LogLevel Notice",
        "DisableViaHeader Yes",
        "Filter \"@FILTER@\"",
        "FilterType ere",
        "FilterURLs No",
        "FilterDefaultDeny Yes",
        *(f"ConnectPort {port}" for port in HTTPS_PORTS),
        f"Allow {client_subnet}",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class ProxyEnv:
    url: str

    def variables(self) -> dict[str, str]:
        """What tools read, in both cases (curl reads only lower-case http_proxy)."""
        no_proxy = "localhost,127.0.0.1,::1"
        values = {"HTTP_PROXY": self.url, "HTTPS_PROXY": self.url, "NO_PROXY": no_proxy}
        return {**values, **{k.lower(): v for k, v in values.items()},
                # npm and yarn read their own names; pip and git read the ones above
                "npm_config_proxy": self.url, "npm_config_https_proxy": self.url}


def proxy_env() -> ProxyEnv:
    return ProxyEnv(f"http://{PROXY_ALIAS}:{PROXY_PORT}")
