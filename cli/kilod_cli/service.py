"""`kilod service install|uninstall [--print]`: the daemon as a systemd user service.

`install` writes `$XDG_CONFIG_HOME/systemd/user/kilod.service` (default
`~/.config/systemd/user/`), whose `ExecStart` is this installation's `kilod serve`,
then `systemctl --user daemon-reload` and `enable --now`. The unit reads an optional
environment file, `$XDG_CONFIG_HOME/kilod/env` (`KILOD_*` settings, model API keys);
when there is none yet, `install` creates it (mode 0600) with the `KILOD_*` variables
set in this shell, so the service uses the same data dir and socket as `kilod ctl`.
`uninstall` is the reverse and leaves the environment file and the data alone.
`--print` prints the unit (or, for uninstall, what would be done) and changes nothing.

Standard library only: the CLI stays quick to start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

UNIT_NAME = "kilod.service"
EXIT_OK = 0
EXIT_FAILURE = 1
SYSTEMCTL_TIMEOUT = 60.0
ENV_PREFIX = "KILOD_"
UNRUNNABLE = "\\\"'"  # systemd: "Executable name contains special characters"
ENV_FILE_HEADER = """\
# Environment of the kilod user service (systemd EnvironmentFile syntax: NAME=value).
# KILOD_* settings as in the README, and the model keys litellm reads, e.g.
# ANTHROPIC_API_KEY=...
# OPENAI_API_KEY=...
# After a change: systemctl --user restart kilod
"""


def config_home() -> Path:
    value = os.environ.get("XDG_CONFIG_HOME")
    return Path(value) if value else Path.home() / ".config"


def unit_path() -> Path:
    return config_home() / "systemd" / "user" / UNIT_NAME


def env_file_path() -> Path:
    return config_home() / "kilod" / "env"


def kilod_command() -> list[str]:
    """This installation's `kilod` as an absolute path, or its Python running `-m kilod_cli.main`."""
    beside_python = Path(sys.executable).parent / "kilod"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return [str(beside_python.absolute())]
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "kilod" and argv0.is_file():
        return [str(argv0.resolve())]
    found = shutil.which("kilod")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "kilod_cli.main"]


def systemd_quote(word: str, program: bool = False) -> str:
    """One word of an Exec line: systemd expands `%` everywhere and `$` in the arguments
    (not in the program's path), and splits words at spaces."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if not program:
        escaped = escaped.replace("$", "$$")
    if escaped != word or any(c.isspace() for c in word) or not word:
        return f'"{escaped}"'
    return word


def render_unit(command: list[str] | None = None) -> str:
    """The unit's text; ValueError for a program path systemd refuses to run."""
    argv = [*(command or kilod_command()), "serve"]
    if any(c in UNRUNNABLE or not c.isprintable() for c in argv[0]):
        raise ValueError(f"systemd cannot run a program whose path holds a backslash, a quote or a control "
                         f"character: {argv[0]}; install kilod under a plainer path")
    exec_start = " ".join(systemd_quote(word, program=i == 0) for i, word in enumerate(argv))
    return f"""\
# kilod as a systemd user service; written by `kilod service install`.
# Settings and model keys: %E/kilod/env (~/.config/kilod/env), NAME=value lines.
[Unit]
Description=kilod: AI coding agents in parallel, each in its own git worktree and container

[Service]
Type=exec
ExecStart={exec_start}
EnvironmentFile=-%E/kilod/env
Environment=PYTHONUNBUFFERED=1
# kilod stops cleanly on SIGTERM; running attempts resume at the next start.
KillMode=mixed
TimeoutStopSec=30
Restart=on-failure
RestartSec=2
NoNewPrivileges=yes

[Install]
WantedBy=default.target
"""


def systemctl(*args: str) -> tuple[bool, str]:
    """Run `systemctl --user ARGS`: (worked, what it said)."""
    binary = shutil.which("systemctl")
    if binary is None:
        return False, "systemctl is not installed"
    try:
        done = subprocess.run([binary, "--user", *args], capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    said = (done.stderr or done.stdout).strip()
    return done.returncode == 0, said or f"exit status {done.returncode}"


def _say(message: str) -> None:
    print(f"kilod: {message}", file=sys.stderr)


def _write_env_file(path: Path) -> bool:
    """Create the environment file with this shell's KILOD_* variables; an existing one is kept."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [ENV_FILE_HEADER]
    for name, value in sorted(os.environ.items()):
        if name.startswith(ENV_PREFIX) and value and "\n" not in value:
            lines.append(f"{name}={value}\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(lines)
    return True


def install(print_only: bool) -> int:
    try:
        text = render_unit()
    except ValueError as exc:
        _say(str(exc))
        return EXIT_FAILURE
    if print_only:
        sys.stdout.write(text)
        return EXIT_OK
    path = unit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)
    _say(f"wrote {path}")
    env_file = env_file_path()
    if _write_env_file(env_file):
        _say(f"wrote {env_file} (mode 0600) with this shell's KILOD_* settings; add model keys there")
    for step in (("daemon-reload",), ("enable", "--now", UNIT_NAME)):
        worked, said = systemctl(*step)
        if not worked:
            _say(f"`systemctl --user {' '.join(step)}` failed: {said}")
            _say("the unit file is in place; in a login session with a user systemd, run "
                 f"`systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}`")
            return EXIT_FAILURE
    _say(f"enabled and started {UNIT_NAME}: `systemctl --user status kilod`, `journalctl --user -u kilod`")
    _say("to keep it running while you are logged out: `loginctl enable-linger`")
    return EXIT_OK


def uninstall(print_only: bool) -> int:
    path = unit_path()
    if print_only:
        print(f"systemctl --user disable --now {UNIT_NAME}")
        print(f"rm {path}")
        print("systemctl --user daemon-reload")
        return EXIT_OK
    problems: list[str] = []
    worked, said = systemctl("disable", "--now", UNIT_NAME)
    if not worked and path.exists():
        problems.append(f"`systemctl --user disable --now {UNIT_NAME}` failed: {said}")
    if path.exists():
        path.unlink()
        _say(f"removed {path}")
    else:
        _say(f"{path} was not there")
    worked, said = systemctl("daemon-reload")
    if not worked:
        problems.append(f"`systemctl --user daemon-reload` failed: {said}")
    for problem in problems:
        _say(problem)
    if problems:
        return EXIT_FAILURE
    _say(f"{UNIT_NAME} is stopped and removed; {env_file_path()} and the data dir are left as they were")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.service_command == "install":
        return install(args.print_only)
    return uninstall(args.print_only)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `service` to the `kilod` parser's verbs (`parser.add_subparsers(...)`); its handler is `run`."""
    service: argparse.ArgumentParser = subparsers.add_parser(
        "service", help="run the daemon as a systemd user service",
        description="Install or remove kilod as a systemd user service (~/.config/systemd/user/kilod.service).")
    verbs = service.add_subparsers(dest="service_command", metavar="VERB", required=True)
    for name, help_text, print_help in (
        ("install", "write, enable and start the user unit", "print the unit and change nothing"),
        ("uninstall", "stop, disable and remove the user unit", "print what would be done and change nothing"),
    ):
        verb = verbs.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        verb.add_argument("--print", dest="print_only", action="store_true", help=print_help)
        verb.set_defaults(handler=run)
    return service
