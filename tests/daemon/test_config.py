"""Settings: defaults, KILOD_* environment, the TOML file, validation; and the CLI's paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from kilod import paths
from kilod.config import UNPRIVILEGED_SANDBOX_UID, Settings


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No KILOD_* from the outside; XDG dirs inside tmp_path. Returns the XDG data home."""
    for name in list(os.environ):
        if name.startswith("KILOD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return tmp_path / "xdg-data"


def write_toml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_with_nothing_set(tmp_path: Path) -> None:
    settings = Settings()
    data = tmp_path / "xdg-data" / "kilod"
    assert settings.data_dir == data
    assert settings.db_path == data / "kilod.db"
    assert settings.worktrees_dir == data / "worktrees"
    assert settings.socket is None
    assert settings.socket_path == data / "kilod.sock"
    assert settings.instance.startswith("kilod-") and len(settings.instance) == len("kilod-") + 12
    assert settings.max_parallel == 4
    assert settings.sandbox_image == "kilod/sandbox"
    assert settings.network is False
    assert settings.scripts_dir is None


def test_data_dir_falls_back_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "kilod"


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILOD_MAX_PARALLEL", "9")
    monkeypatch.setenv("KILOD_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("KILOD_NETWORK", "true")
    monkeypatch.setenv("KILOD_INSTANCE", "ci-7.a_b")
    settings = Settings()
    assert settings.max_parallel == 9
    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.db_path == tmp_path / "elsewhere" / "kilod.db"
    assert settings.network is True
    assert settings.instance == "ci-7.a_b"


def test_toml_file_from_kilod_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_toml(tmp_path / "conf" / "k.toml",
                        f'max_parallel = 3\ndata_dir = "{tmp_path / "from-toml"}"\nsandbox_image = "mine:1"\n')
    monkeypatch.setenv("KILOD_CONFIG", str(config))
    settings = Settings()
    assert settings.max_parallel == 3
    assert settings.data_dir == tmp_path / "from-toml"
    assert settings.sandbox_image == "mine:1"


def test_toml_file_in_the_config_dir(tmp_path: Path) -> None:
    write_toml(tmp_path / "xdg-config" / "kilod" / "config.toml", "max_parallel = 5\n")
    assert Settings().max_parallel == 5


def test_environment_beats_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_toml(tmp_path / "k.toml", 'max_parallel = 3\ninstance = "from-toml"\n')
    monkeypatch.setenv("KILOD_CONFIG", str(config))
    monkeypatch.setenv("KILOD_MAX_PARALLEL", "11")
    settings = Settings()
    assert settings.max_parallel == 11
    assert settings.instance == "from-toml"  # what the environment does not set still comes from TOML


def test_missing_toml_file_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILOD_CONFIG", str(tmp_path / "absent.toml"))
    assert Settings().max_parallel == 4


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILOD_INSTANCE", "")
    monkeypatch.setenv("KILOD_MAX_PARALLEL", "")
    settings = Settings()
    assert settings.instance == Settings().instance != ""
    assert settings.max_parallel == 4


def test_the_default_instance_label_follows_the_data_dir(tmp_path: Path) -> None:
    """Two daemons on one engine must not remove each other's containers as leftovers."""
    first = Settings(data_dir=tmp_path / "one")
    assert Settings(data_dir=tmp_path / "one").instance == first.instance  # stable across restarts
    assert Settings(data_dir=tmp_path / "two").instance != first.instance
    assert Settings(data_dir=tmp_path / "two", instance="shared").instance == "shared"


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("KILOD_MAX_PARALLEL", "0"),
        ("KILOD_MAX_PARALLEL", "257"),
        ("KILOD_MAX_PARALLEL", "many"),
        ("KILOD_INSTANCE", "has space"),
        ("KILOD_INSTANCE", "a/b"),
        ("KILOD_CPU_LIMIT", "0"),
        ("KILOD_PIDS_LIMIT", "1"),
        ("KILOD_TOOL_OUTPUT_LIMIT", "10"),
    ],
)
def test_invalid_environment_values_raise(monkeypatch: pytest.MonkeyPatch, env: str, value: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert env.removeprefix("KILOD_").lower() in str(caught.value)


def test_invalid_toml_values_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILOD_CONFIG", str(write_toml(tmp_path / "k.toml", "max_parallel = 0\n")))
    with pytest.raises(ValidationError, match="max_parallel"):
        Settings()


def test_unknown_toml_key_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in the config file is an error, not silently ignored."""
    monkeypatch.setenv("KILOD_CONFIG", str(write_toml(tmp_path / "k.toml", "max_paralel = 2\n")))
    with pytest.raises(ValidationError, match="max_paralel"):
        Settings()


def test_effective_sandbox_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 0)
    assert Settings().effective_sandbox_uid == UNPRIVILEGED_SANDBOX_UID == 1000
    monkeypatch.setattr(os, "getuid", lambda: 1234)
    assert Settings().effective_sandbox_uid == 1234
    monkeypatch.setenv("KILOD_SANDBOX_UID", "4321")
    assert Settings().effective_sandbox_uid == 4321
    monkeypatch.setattr(os, "getuid", lambda: 0)
    assert Settings().effective_sandbox_uid == 4321


def test_public_settings_are_json(tmp_path: Path) -> None:
    public = Settings().public()
    assert public["data_dir"] == str(tmp_path / "xdg-data" / "kilod")
    assert public["max_parallel"] == 4


# -- kilod.paths: what the CLI uses to find the daemon ---------------------------------


def test_socket_path_defaults_under_the_data_dir(tmp_path: Path) -> None:
    assert paths.socket_path() == tmp_path / "xdg-data" / "kilod" / "kilod.sock"


def test_socket_path_follows_kilod_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILOD_DATA_DIR", str(tmp_path / "d"))
    assert paths.socket_path() == tmp_path / "d" / "kilod.sock"


def test_socket_path_follows_kilod_socket_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILOD_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("KILOD_SOCKET", str(tmp_path / "s" / "api.sock"))
    assert paths.socket_path() == tmp_path / "s" / "api.sock"


def test_socket_path_from_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_toml(tmp_path / "k.toml", f'data_dir = "{tmp_path / "t"}"\n')
    monkeypatch.setenv("KILOD_CONFIG", str(config))
    assert paths.socket_path() == tmp_path / "t" / "kilod.sock"
    write_toml(config, f'data_dir = "{tmp_path / "t"}"\nsocket = "{tmp_path / "t.sock"}"\n')
    assert paths.socket_path() == tmp_path / "t.sock"


@pytest.mark.parametrize(
    ("env", "toml"),
    [
        ({}, ""),
        ({"KILOD_DATA_DIR": "{tmp}/env-data"}, ""),
        ({"KILOD_SOCKET": "{tmp}/env.sock"}, ""),
        ({}, 'data_dir = "{tmp}/toml-data"\n'),
        ({"KILOD_DATA_DIR": "{tmp}/env-data"}, 'data_dir = "{tmp}/toml-data"\n'),
        ({"KILOD_DATA_DIR": "{tmp}/env-data"}, 'socket = "{tmp}/toml.sock"\n'),
        # set but empty, as `KILOD_DATA_DIR=$UNSET_VAR kilod serve` does
        ({"KILOD_DATA_DIR": ""}, ""),
        ({"KILOD_SOCKET": ""}, ""),
    ],
    ids=["defaults", "env-data", "env-socket", "toml-data", "env-beats-toml", "env-data-toml-socket",
         "empty-data-dir", "empty-socket"],
)
def test_cli_and_daemon_agree_on_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            env: dict[str, str], toml: str) -> None:
    """`kilod ctl` (kilod.paths) must look for the socket where the daemon (Settings) listens."""
    config = write_toml(tmp_path / "k.toml", toml.replace("{tmp}", str(tmp_path)))
    monkeypatch.setenv("KILOD_CONFIG", str(config))
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("{tmp}", str(tmp_path)))
    assert paths.socket_path() == Settings().socket_path
    assert paths.data_dir() == Settings().data_dir
