"""Where things live by default. Dependency-free, so the CLI can import it and stay fast.

Order: `KILOD_*` environment, then the TOML config file, then the XDG defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def config_file() -> Path:
    explicit = os.environ.get("KILOD_CONFIG")
    if explicit:
        return Path(explicit)
    return _xdg("XDG_CONFIG_HOME", ".config") / "kilod" / "config.toml"


def default_data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "kilod"


def _toml() -> dict[str, Any]:
    import tomllib  # only when a setting is not in the environment: most CLI runs never parse TOML

    try:
        with config_file().open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def data_dir() -> Path:
    value = os.environ.get("KILOD_DATA_DIR") or _toml().get("data_dir")
    return Path(value) if value else default_data_dir()


def socket_path() -> Path:
    value = os.environ.get("KILOD_SOCKET") or _toml().get("socket")
    return Path(value) if value else data_dir() / "kilod.sock"
