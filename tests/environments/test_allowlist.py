"""Allowlist patterns and what tinyproxy is given for them (pure)."""

from __future__ import annotations

import re

import pytest

from kilod.environments.allowlist import (
    AllowlistError,
    filter_lines,
    matches,
    normalise,
    proxy_config,
    proxy_env,
)
from kilod.environments.egress import Refusal
from kilod.environments.refusals import message


def test_patterns_are_lower_cased_and_deduplicated() -> None:
    assert normalise(["PyPI.org", "pypi.org.", " files.pythonhosted.org ", "*.npmjs.org"]) == [
        "pypi.org", "files.pythonhosted.org", "*.npmjs.org"]


@pytest.mark.parametrize("bad", ["https://pypi.org", "pypi.org:443", "pypi.org/simple", "*", "*.org", "a..b",
                                 "-x.org", "", "pypi org", "*.*.x.org"])
def test_anything_but_a_host_or_star_domain_is_refused_with_the_pattern_named(bad: str) -> None:
    with pytest.raises(AllowlistError, match=re.escape(f"'{bad}'")):
        normalise([bad])


def test_a_star_matches_subdomains_only_and_exact_names_match_only_themselves() -> None:
    assert matches("*.npmjs.org", "registry.npmjs.org") and matches("*.npmjs.org", "a.b.npmjs.org")
    assert not matches("*.npmjs.org", "npmjs.org") and not matches("*.npmjs.org", "evilnpmjs.org")
    assert matches("pypi.org", "PYPI.org") and not matches("pypi.org", "pypi.org.evil.com")
    assert not matches("pypi.org", "pypiXorg")  # the dot is literal


def test_the_filter_is_anchored_and_the_config_denies_by_default() -> None:
    assert filter_lines(["pypi.org", "*.npmjs.org"]).splitlines() == [
        r"^pypi\.org$", r"^([a-z0-9-]+\.)+npmjs\.org$"]
    config = proxy_config("172.30.0.0/16").splitlines()
    assert "FilterDefaultDeny Yes" in config and "FilterType ere" in config
    assert "ConnectPort 443" in config and "Allow 172.30.0.0/16" in config


def test_both_spellings_of_the_proxy_variables_are_set() -> None:
    env = proxy_env().variables()
    assert env["HTTPS_PROXY"] == env["https_proxy"] == env["HTTP_PROXY"] == env["http_proxy"]
    assert "localhost" in env["NO_PROXY"] and env["no_proxy"] == env["NO_PROXY"]


def test_refusal_messages_name_the_host_or_the_port() -> None:
    assert "evil.invalid is not on the network allowlist" in message(Refusal("t", "evil.invalid"))
    assert "port 22" in message(Refusal("t", ":22"))


def test_the_daemon_default_may_be_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from kilod.config import Settings

    monkeypatch.setenv("KILOD_CONFIG", "/nonexistent/kilod.toml")
    monkeypatch.setenv("KILOD_NETWORK", '["PyPI.org", "*.npmjs.org"]')
    assert Settings().network == ["pypi.org", "*.npmjs.org"]
    monkeypatch.setenv("KILOD_NETWORK", "true")
    assert Settings().network is True
    monkeypatch.setenv("KILOD_NETWORK", '["https://pypi.org"]')
    with pytest.raises(ValidationError, match=re.escape("https://pypi.org")):
        Settings()
