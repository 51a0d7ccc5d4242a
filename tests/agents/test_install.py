"""`kilod agents install` / `list`: the real wheels (cached once per machine), real pip, real docker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from kilod.agents.catalog import package
from kilod.agents.install import cache_root, cached_wheel


def kilod(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kilod_cli.main", "agents", *args], capture_output=True, text=True,
                          env={**os.environ, "KILOD_DATA_DIR": str(data_dir),
                               "KILOD_CONFIG": str(data_dir / "none.toml"), **(env or {})}, timeout=900)


def test_install_extracts_the_real_binary_once_and_lists_it(tmp_path: Path) -> None:
    done = kilod(tmp_path, "install", "codex", "--json")
    assert done.returncode == 0, done.stderr
    installed = json.loads(done.stdout)
    assert (installed["name"], installed["version"], installed["current"]) == ("codex", "0.163.0", True)
    binary = Path(installed["path"], installed["entrypoint"])
    assert subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip() == \
        "codex-cli 0.163.0"
    assert "%" in done.stderr                                    # extraction progress was shown
    assert cached_wheel(package("codex")) is not None             # the wheel stays in the machine's cache

    again = kilod(tmp_path, "install", "codex")
    assert again.returncode == 0 and "already installed" in again.stderr
    listing = json.loads(kilod(tmp_path, "list", "--json").stdout)
    rows = {row["name"]: row for row in listing["agents"]}
    assert rows["codex"]["current"] == "0.163.0" and rows["claude-code"]["current"] is None
    assert listing["cache"] == str(cache_root())
    assert "codex" in kilod(tmp_path, "list").stdout


def test_offline_install_fails_with_a_clear_message_and_installs_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = kilod(tmp_path / "data", "install", "claude-code", env={
        "KILOD_AGENTS_CACHE": str(tmp_path / "cache"), "PIP_INDEX_URL": "https://pypi.invalid/simple",
        "PIP_FIND_LINKS": str(empty), "PIP_RETRIES": "0", "PIP_TIMEOUT": "5"})
    assert done.returncode == 1
    assert "kilod: could not download claude-agent-sdk==0.2.189" in done.stderr and "Offline?" in done.stderr
    assert not list((tmp_path / "cache" / "wheels").glob("*.whl"))
    assert json.loads(kilod(tmp_path / "data", "list", "--json").stdout)["agents"][0]["installed"] == []


def test_a_wheel_with_a_path_outside_its_folder_is_refused(tmp_path: Path) -> None:
    wheels = tmp_path / "cache" / "wheels"
    wheels.mkdir(parents=True)
    with zipfile.ZipFile(wheels / "openai_codex_cli_bin-9.9.9-py3-none-manylinux_2_17_x86_64.whl", "w") as wheel:
        wheel.writestr("codex_cli_bin/bin/codex", "#!/bin/sh\n")
        wheel.writestr("codex_cli_bin/../../escaped", "gotcha")
    done = kilod(tmp_path / "data", "install", "codex", "--version", "9.9.9",
                 env={"KILOD_AGENTS_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 1 and "unsafe path" in done.stderr
    assert not list(tmp_path.rglob("escaped"))
    assert not (tmp_path / "data" / "agents" / "codex" / "9.9.9").exists()


def test_unknown_agent_is_a_usage_error(tmp_path: Path) -> None:
    done = kilod(tmp_path, "install", "cursor")
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_a_python_agent_needs_python3_in_the_image(tmp_path: Path, sandbox_image: str) -> None:
    bare = "debian:bookworm-slim"  # the base the sandbox image is built from (so it is here): no python3
    done = kilod(tmp_path, "install", "mini-swe-agent", "--image", bare)
    assert done.returncode == 1 and f"image {bare} has no python3" in done.stderr
    assert not (tmp_path / "agents" / "mini-swe-agent" / "current").exists()

