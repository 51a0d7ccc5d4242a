"""KILOD_EXTRA_CA_CERTS: the bundle the sandboxes get, and a daemon that refuses a wrong file at start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kilod.environments.certificates import IN_SANDBOX_BUNDLE, IN_SANDBOX_EXTRA, TRUST_STORE, CaFiles, prepare
from kilod.errors import Invalid
from tests.kilod_testing import DaemonProcess

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def test_the_bundle_holds_the_system_roots_and_the_extra_certificate(tmp_path: Path) -> None:
    extra = tmp_path / "corp.pem"
    extra.write_text(PEM)
    files = prepare(extra, tmp_path / "ca")
    bundle = files.bundle.read_text()
    assert bundle.endswith(PEM) and bundle.count("BEGIN CERTIFICATE") > 1  # the host's roots come first
    assert files.extra.read_text() == PEM
    assert prepare(extra, tmp_path / "ca") == files  # named by content: the same files again
    targets = {target for _, target in files.mounts()}
    assert targets == {TRUST_STORE, IN_SANDBOX_BUNDLE, IN_SANDBOX_EXTRA}
    env = CaFiles.env()
    assert env["PIP_CERT"] == env["SSL_CERT_FILE"] == env["GIT_SSL_CAINFO"] == IN_SANDBOX_BUNDLE
    assert env["NODE_EXTRA_CA_CERTS"] == IN_SANDBOX_EXTRA


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_a_missing_or_wrong_file_is_refused_with_its_path(tmp_path: Path, content: str | None) -> None:
    extra = tmp_path / "corp.pem"
    if content is not None:
        extra.write_text(content)
    with pytest.raises(Invalid, match=f"KILOD_EXTRA_CA_CERTS: .*{extra}"):
        prepare(extra, tmp_path / "ca")


def test_the_daemon_refuses_to_start_with_a_wrong_ca_file(daemon_factory: Callable[..., DaemonProcess],
                                                          tmp_path: Path) -> None:
    daemon = daemon_factory({"KILOD_EXTRA_CA_CERTS": str(tmp_path / "absent.pem")})
    with pytest.raises(RuntimeError, match="KILOD_EXTRA_CA_CERTS: cannot read"):
        daemon.start()
