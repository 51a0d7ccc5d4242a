"""Settings: `KILOD_*` environment variables, an optional TOML file, then defaults.

Defaults work with nothing set: the store, worktrees and the socket live under the
user's data dir. The TOML file is `$KILOD_CONFIG` or `<config dir>/kilod/config.toml`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kilod.environments.allowlist import normalise
from kilod.environments.subnets import parse_pool
from kilod.paths import config_file, default_data_dir

# A root daemon must not hand root to its sandboxes: they run as this id instead.
UNPRIVILEGED_SANDBOX_UID = 1000


class Settings(BaseSettings):
    # an empty variable means "not set", as kilod.paths (the CLI's side) reads it
    model_config = SettingsConfigDict(env_prefix="KILOD_", extra="forbid", env_ignore_empty=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="store, worktrees, logs")
    socket: Path | None = Field(None, description="unix socket of the API (default <data_dir>/kilod.sock)")
    instance: str = Field("", description="label value that marks this daemon's containers "
                                          "(default: derived from the data dir, so two daemons never share one)")
    max_parallel: int = Field(4, ge=1, le=256, description="attempts running at once; the rest queue")
    min_free_bytes: int = Field(256 * 1024 * 1024, ge=0,
                                description="free space the data dir's disk must keep: below it new cards are "
                                            "refused (503) and queued attempts wait")
    default_model: str = Field("anthropic/claude-sonnet-4-5", description="litellm model name")
    sandbox_image: str = Field("kilod/sandbox", description="image for attempt containers")
    forwarder_image: str = Field("kilod/sandbox", description="image of the per-attempt gateway forwarder "
                                                               "sidecar (kilod's own: it has socat)")
    sandbox_uid: int | None = Field(
        None, description="user id in sandboxes (default: the daemon's own, or 1000 when it is root)"
    )
    memory_limit: str = Field("2g", description="per-container memory limit (docker syntax)")
    cpu_limit: float = Field(1.0, gt=0, description="per-container CPUs")
    pids_limit: int = Field(512, ge=16, description="per-container process limit")
    network: bool | list[str] = Field(False, description="sandbox network unless a card or .kilod.toml says "
                                                         "otherwise: true, false or a JSON list of allowed hosts")
    proxy_image: str = Field("kilod/proxy", description="image of the egress proxy (tinyproxy) for allowlists")
    egress_subnets: str = Field(
        "172.31.240.0/20", description="IPv4 pool each allowlisted attempt's internal network gets a /28 of "
                                       "(a /20: 256 at once; Docker's own pools hold ~30 networks)")
    extra_ca_certs: Path | None = Field(
        None, description="PEM file of extra CA certificates (a TLS-inspecting proxy's) every sandbox trusts")
    gc_idle_after: float = Field(3 * 86400, ge=0, description="seconds an attempt may rest (Review, failed, "
                                 "cancelled) with no activity before its container goes; re-created on demand")
    gc_auto: bool = Field(True, description="run `kilod ctl gc` on its own every few minutes")
    caches: bool = Field(True, description="mount per-repository dependency cache volumes in sandboxes")
    step_limit: int = Field(50, ge=1, description="model calls per attempt before it is stopped")
    tool_timeout: float = Field(300.0, gt=0, description="seconds one shell tool call may run")
    tool_output_limit: int = Field(16_000, ge=1_000, description="characters of tool output the model sees")
    setup_timeout: float = Field(900.0, gt=0, description="seconds one .kilod.toml setup command may run")
    check_timeout: float = Field(600.0, gt=0, description="seconds one .kilod.toml check may run (default)")
    command_output_limit: int = Field(262_144, ge=1_024, description="bytes of one setup or check command's "
                                      "output recorded live as `output` events; past it they stop, saying so")
    model_timeout: float = Field(600.0, gt=0, description="seconds one model call may take")
    gateway_models: dict[str, str] = Field(
        default_factory=dict, description="model gateway: model names agents ask for → the litellm model to use "
                                          "instead of the attempt's (e.g. an agent's small/fast model), JSON object")
    model_retry_patience: float = Field(900.0, ge=0, description="seconds a model call keeps retrying 429/5xx/"
                                        "overloaded errors (honouring Retry-After) before the attempt stops in Review")
    model_retries: int = Field(30, ge=0, description="most tries of one model call on retryable errors")
    context_window: int = Field(128_000, ge=1_000, description="input tokens of models litellm's map does not know")
    context_management: bool = Field(True, description="mask old tool outputs, then summarise older turns, "
                                                       "when a conversation nears the model's window")
    reconcile_interval: float = Field(5.0, gt=0, description="seconds between reconciler passes")
    scripts_dir: Path | None = Field(None, description="extra folder of scripted-model scripts")
    max_file_bytes: int = Field(100 * 1024 * 1024, ge=1,
                                description="largest worktree file that becomes a blob in the repository; larger "
                                            "ones are left out of the diff and of what lands ('file too large')")
    git_author_name: str | None = Field(None, description="author of approved commits (default: git config)")
    git_author_email: str | None = Field(None, description="author email of approved commits")
    http: str | None = Field(None, description="host:port to serve the web board on, off by default")
    http_allowed_hosts: list[str] = Field(default_factory=list,
                                          description="extra Host names for the TCP listener (a proxy's or Ingress's)")
    metrics_public: bool = Field(False, description="serve GET /metrics on the TCP listener without the token")
    token: str | None = Field(None, min_length=16, repr=False,
                              description="bearer token for the web board and TCP API (default: <data_dir>/token)")

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # worktree paths are stored and bind-mounted: they must not depend on the cwd
        return value.expanduser().absolute()

    @field_validator("network")
    @classmethod
    def _allowlist(cls, value: bool | list[str]) -> bool | list[str]:
        return normalise(value) if isinstance(value, list) else value

    @field_validator("egress_subnets")
    @classmethod
    def _pool(cls, value: str) -> str:
        return str(parse_pool(value))

    @field_validator("instance")
    @classmethod
    def _label_safe(cls, value: str) -> str:
        if not all(c.isalnum() or c in "-_." for c in value):
            raise ValueError("instance must be letters, digits, '-', '_' or '.'")
        return value

    @model_validator(mode="after")
    def _instance_of_data_dir(self) -> Settings:
        # The reconciler removes labelled containers it has no attempt for: two daemons
        # on one Docker engine (two users, two data dirs) must never share a label.
        if not self.instance:
            self.instance = "kilod-" + hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return self

    @field_validator("http")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    @property
    def socket_path(self) -> Path:
        return self.socket or self.data_dir / "kilod.sock"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "kilod.db"

    @property
    def worktrees_dir(self) -> Path:
        return self.data_dir / "worktrees"

    @property
    def effective_sandbox_uid(self) -> int:
        if self.sandbox_uid is not None:
            return self.sandbox_uid
        uid = os.getuid()
        return UNPRIVILEGED_SANDBOX_UID if uid == 0 else uid

    @property
    def sandbox_owner(self) -> tuple[int, int]:
        """(uid, gid) the sandbox runs as and worktree files belong to."""
        uid = self.effective_sandbox_uid
        return uid, (os.getgid() if uid == os.getuid() else uid)

    @property
    def http_address(self) -> tuple[str, int] | None:
        return split_host_port(self.http) if self.http else None

    @property
    def token_path(self) -> Path:
        return self.data_dir / "token"

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"token"})


def split_host_port(value: str) -> tuple[str, int]:
    """`127.0.0.1:8765`, `localhost:8765`, `[::1]:8765` → (host, port); ValueError otherwise."""
    host, sep, port_text = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("write an IPv6 address in brackets: [::1]:8765")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected HOST:PORT (such as 127.0.0.1:8765), got '{value}'")
    return host, int(port_text)
