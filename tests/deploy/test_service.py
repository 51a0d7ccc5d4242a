"""`kilod service`: the user unit passes `systemd-analyze verify`; install/uninstall write,
enable and remove it, and say so plainly when `systemctl --user` cannot help.

`systemctl` is always a stand-in on PATH here: a test must never enable a real service
on the machine that runs it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kilod_cli.service import UNIT_NAME, kilod_command, render_unit, systemd_quote
from tests.deploy.tools import unavailable

# The verbs as the lead wires them into `kilod` (add_parser on the top-level verbs).
CLI = textwrap.dedent("""
    import argparse, sys
    from kilod_cli import service
    parser = argparse.ArgumentParser(prog="kilod")
    service.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(sys.argv[1:])
    sys.exit(args.handler(args))
""")
FAKE_SYSTEMCTL = textwrap.dedent("""\
    #!/bin/sh
    echo "$*" >> "$SYSTEMCTL_LOG"
    if [ -n "$SYSTEMCTL_FAIL" ]; then echo "$SYSTEMCTL_FAIL" >&2; exit 1; fi
    exit 0
""")
HEAVY = ("aiohttp", "pydantic", "litellm", "docker")


def service_cli(tmp_path: Path, *args: str, systemctl: str | None = "ok",
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `kilod service ARGS` with XDG_CONFIG_HOME in tmp and a stand-in systemctl
    (`ok`, a failure message, or None for none on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "systemctl"
    fake.unlink(missing_ok=True)
    if systemctl is not None:
        fake.write_text(FAKE_SYSTEMCTL)
        fake.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith("KILOD_")}
    env.update({
        "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "SYSTEMCTL_LOG": str(tmp_path / "systemctl.log"),
        "SYSTEMCTL_FAIL": "" if systemctl in (None, "ok") else str(systemctl),
        **(extra_env or {}),
    })
    if systemctl is None:
        env["PATH"] = f"{bin_dir}:{Path(sys.executable).parent}"  # nothing called systemctl anywhere
    return subprocess.run([sys.executable, "-c", CLI, "service", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def systemctl_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "systemctl.log"
    return log.read_text().splitlines() if log.exists() else []


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        unavailable("systemd-analyze is not installed (Debian's systemd package; .ci/run installs it)")
    runtime = unit.parent / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    # --user verifies as the user manager would load it; it needs a runtime dir, not a running systemd
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run([analyze, "--user", "verify", str(unit)], capture_output=True, text=True, env=env,
                          timeout=60)


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    command = kilod_command()
    assert Path(command[0]).is_absolute() and os.access(command[0], os.X_OK)
    unit = tmp_path / UNIT_NAME
    unit.write_text(render_unit(command))
    checked = verify(unit)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked.stdout + checked.stderr


def test_verify_does_catch_a_broken_unit(tmp_path: Path) -> None:
    unit = tmp_path / UNIT_NAME
    broken = render_unit([str(tmp_path / "no-such-kilod")]).replace("Restart=on-failure", "Restart=sometimes")
    unit.write_text(broken)
    checked = verify(unit)
    said = checked.stdout + checked.stderr
    assert checked.returncode != 0 and "no-such-kilod" in said
    assert "Restart" in said or "restart" in said


def test_the_unit_says_what_the_issue_asks(tmp_path: Path) -> None:
    unit = render_unit(["/opt/kilod/bin/kilod"])
    lines = unit.splitlines()
    assert "ExecStart=/opt/kilod/bin/kilod serve" in lines
    assert "Restart=on-failure" in lines
    assert "EnvironmentFile=-%E/kilod/env" in lines  # optional: the leading '-'
    assert "WantedBy=default.target" in lines
    odd = render_unit(["/home/a b/100%/$HOME/kilod"])
    assert 'ExecStart="/home/a b/100%%/$HOME/kilod" serve' in odd.splitlines()
    assert systemd_quote("plain") == "plain"
    assert systemd_quote("$HOME") == '"$$HOME"' and systemd_quote("$HOME", program=True) == "$HOME"


def test_install_print_prints_the_unit_and_writes_nothing(tmp_path: Path) -> None:
    done = service_cli(tmp_path, "install", "--print")
    assert done.returncode == 0, done.stderr
    assert done.stdout == render_unit()
    assert not (tmp_path / "config").exists()
    assert systemctl_calls(tmp_path) == []


def test_install_writes_enables_and_starts_the_unit(tmp_path: Path) -> None:
    done = service_cli(tmp_path, "install", extra_env={"KILOD_DATA_DIR": "/srv/kilod", "KILOD_MAX_PARALLEL": "2"})
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "config" / "systemd" / "user" / UNIT_NAME
    assert unit.read_text() == render_unit()
    assert systemctl_calls(tmp_path) == ["--user daemon-reload", f"--user enable --now {UNIT_NAME}"]
    env_file = tmp_path / "config" / "kilod" / "env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert {"KILOD_DATA_DIR=/srv/kilod", "KILOD_MAX_PARALLEL=2"} <= set(env_file.read_text().splitlines())
    assert str(unit) in done.stderr
    # a second install keeps the environment file the person may have edited since
    env_file.write_text("ANTHROPIC_API_KEY=mine\n")
    assert service_cli(tmp_path, "install").returncode == 0
    assert env_file.read_text() == "ANTHROPIC_API_KEY=mine\n"


def test_install_without_a_user_systemd_explains_and_exits_1(tmp_path: Path) -> None:
    done = service_cli(tmp_path, "install", systemctl="Failed to connect to bus: No medium found")
    assert done.returncode == 1
    assert "Failed to connect to bus" in done.stderr and "systemctl --user" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "config" / "systemd" / "user" / UNIT_NAME).exists()


def test_install_without_systemctl_at_all_explains_and_exits_1(tmp_path: Path) -> None:
    done = service_cli(tmp_path, "install", systemctl=None)
    assert done.returncode == 1
    assert "systemctl is not installed" in done.stderr and "Traceback" not in done.stderr


def test_uninstall_stops_and_removes_the_unit(tmp_path: Path) -> None:
    assert service_cli(tmp_path, "install").returncode == 0
    unit = tmp_path / "config" / "systemd" / "user" / UNIT_NAME
    (tmp_path / "systemctl.log").unlink()
    printed = service_cli(tmp_path, "uninstall", "--print")
    assert printed.returncode == 0 and str(unit) in printed.stdout and unit.exists()
    done = service_cli(tmp_path, "uninstall")
    assert done.returncode == 0, done.stderr
    assert not unit.exists()
    assert systemctl_calls(tmp_path) == [f"--user disable --now {UNIT_NAME}", "--user daemon-reload"]
    assert (tmp_path / "config" / "kilod" / "env").exists()  # settings and keys stay


def test_uninstall_without_a_user_systemd_still_removes_the_file_and_says_so(tmp_path: Path) -> None:
    assert service_cli(tmp_path, "install").returncode == 0
    done = service_cli(tmp_path, "uninstall", systemctl="Failed to connect to bus: No medium found")
    assert done.returncode == 1 and "Failed to connect to bus" in done.stderr
    assert not (tmp_path / "config" / "systemd" / "user" / UNIT_NAME).exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert service_cli(tmp_path).returncode == 2
    assert service_cli(tmp_path, "restart").returncode == 2


def test_the_service_verbs_load_nothing_heavy() -> None:
    probe = "import sys; import kilod_cli.service; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                                timeout=60).stdout.split())
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}


def test_an_odd_executable_path_is_quoted_so_systemd_finds_it(tmp_path: Path) -> None:
    """systemd-analyze checks that ExecStart's program exists: a badly quoted path would not."""
    odd = tmp_path / "a b" / "100%" / "$x;`&" / "kilod"
    odd.parent.mkdir(parents=True)
    odd.write_text("#!/bin/sh\n")
    odd.chmod(0o755)
    unit = tmp_path / UNIT_NAME
    unit.write_text(render_unit([str(odd)]))
    checked = verify(unit)
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stderr
    for refused in ("back\\slash", 'a "quote"', "it's"):
        with pytest.raises(ValueError, match="systemd cannot run"):
            render_unit([f"/opt/{refused}/kilod"])
