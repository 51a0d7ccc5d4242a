"""Extra CA certificates for every sandbox (`KILOD_EXTRA_CA_CERTS`): a corporate TLS-inspecting proxy.

A sandbox cannot run update-ca-certificates (no root), and tools disagree on where
they look. So the daemon writes two files once: the extra PEM alone, and a full
bundle (the host's system bundle plus the extra PEM). The bundle is mounted over the
Debian/Ubuntu/Alpine trust store path and named by every variable the common tools
read; Node, which keeps its own roots, gets only the extra PEM.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from kilod.errors import Invalid

PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
SYSTEM_BUNDLES = (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pki/tls/certs/ca-bundle.crt"),
                  Path("/etc/ssl/cert.pem"))
TRUST_STORE = "/etc/ssl/certs/ca-certificates.crt"  # Debian, Ubuntu and Alpine read this file
IN_SANDBOX_BUNDLE = "/etc/kilod/ca-bundle.pem"
IN_SANDBOX_EXTRA = "/etc/kilod/extra-ca.pem"


@dataclass(frozen=True)
class CaFiles:
    bundle: Path  # system roots + the extra certificates
    extra: Path   # the extra certificates alone

    def mounts(self) -> list[tuple[str, str]]:
        """(host path, path in the sandbox), all read-only."""
        return [(str(self.bundle), TRUST_STORE), (str(self.bundle), IN_SANDBOX_BUNDLE),
                (str(self.extra), IN_SANDBOX_EXTRA)]

    @staticmethod
    def env() -> dict[str, str]:
        bundle = IN_SANDBOX_BUNDLE
        return {
            "SSL_CERT_FILE": bundle,          # OpenSSL, Python's ssl, uv, Go
            "REQUESTS_CA_BUNDLE": bundle,     # requests (and pip's vendored copy)
            "PIP_CERT": bundle,
            "CURL_CA_BUNDLE": bundle,
            "GIT_SSL_CAINFO": bundle,
            "CARGO_HTTP_CAINFO": bundle,
            "npm_config_cafile": bundle,
            "NODE_EXTRA_CA_CERTS": IN_SANDBOX_EXTRA,  # added to Node's built-in roots
        }


def prepare(extra: Path, out_dir: Path) -> CaFiles:
    """Validate the PEM file and write the two files under `out_dir` (idempotent, atomic)."""
    try:
        pem = extra.read_bytes()
    except OSError as exc:
        raise Invalid(f"KILOD_EXTRA_CA_CERTS: cannot read {extra}: {exc.strerror or exc}",
                      field="extra_ca_certs") from None
    if PEM_BEGIN not in pem:
        raise Invalid(f"KILOD_EXTRA_CA_CERTS: {extra} holds no PEM certificate ('{PEM_BEGIN.decode()}')",
                      field="extra_ca_certs")
    system = next((p.read_bytes() for p in SYSTEM_BUNDLES if p.is_file()), b"")
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = _write(out_dir, "ca-bundle", system.rstrip(b"\n") + b"\n" + pem if system else pem)
    extra_copy = _write(out_dir, "extra-ca", pem)
    return CaFiles(bundle=bundle, extra=extra_copy)


def _write(out_dir: Path, stem: str, data: bytes) -> Path:
    # named by content: a running sandbox keeps the file it mounted when the setting changes
    target = out_dir / f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}.pem"
    if not target.is_file():
        temporary = target.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    return target
