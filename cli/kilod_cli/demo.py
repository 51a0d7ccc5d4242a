"""`kilod demo`: from nothing to three reviewed attempts on a sample repository.

`kilod demo --agents` puts the built-in agent beside the real Claude Code and Codex
(installed first if they are not), all three on scripted models: no keys needed.

Builds the sandbox image (a no-op when it is current), starts a daemon if none
answers, makes a small git repository, asks three scripted models for the same
change, shows the board until they finish and prints what each one changed. The
daemon is left running for the next steps it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kilod.paths import data_dir
from kilod_cli.client import ApiError, ChangeFeed, Client, CliError, segment
from kilod_cli.images import EXIT_INTERRUPTED, run_build

DEMO_PROMPT = "Make greet() handle an empty name, add farewell(), and cover both with tests."
DEMO_MODELS = ["scripted/careful", "scripted/quick", "scripted/thorough"]
# `kilod demo --agents`: the built-in loop beside the real Claude Code and Codex, on scripted models
AGENT_DEMO_MODELS = ["scripted/careful", "claude-code:scripted/demo_claude", "codex:scripted/demo_codex"]
AGENT_DEMO_AGENTS = ("claude-code", "codex")
# The built-in demo scripts edit these files by exact string match: do not reformat them.
DEMO_FILES = {
    "greeter.py": 'def greet(name):\n    return "Hello " + name\n',
    "README.md": "# Greeter\n\n## Usage\n",
}
DEMO_AUTHOR_NAME = "kilod demo"
DEMO_AUTHOR_EMAIL = "demo@kilod.invalid"
DAEMON_START_SECONDS = 30.0
LOG_TAIL_LINES = 15
FAILED = frozenset({"failed", "cancelled"})


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])


def ensure_daemon(client: Client) -> Path | None:
    """Start a detached daemon unless one answers; returns its log file if this call started it."""
    if client.healthy():
        _say(f"using the daemon already running on {client.socket_path}")
        return None
    directory = data_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = directory / "kilod.log"
    # The daemon must listen where this CLI will look, whichever source named the socket.
    env = {**os.environ, "KILOD_SOCKET": str(client.socket_path)}
    _say(f"starting the daemon (log: {log_path})")
    with log_path.open("ab") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "kilod"], stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=log, env=env, start_new_session=True)
    deadline = time.monotonic() + DAEMON_START_SECONDS
    while time.monotonic() < deadline:
        if client.healthy():
            _say(f"daemon {daemon.pid} is listening on {client.socket_path}")
            return log_path
        exit_code = daemon.poll()
        if exit_code is not None:
            raise CliError(f"the daemon exited at start-up with code {exit_code}; "
                           f"last lines of {log_path}:\n{_log_tail(log_path)}")
        time.sleep(0.2)
    raise CliError(f"the daemon (pid {daemon.pid}) did not answer on {client.socket_path} within "
                   f"{DAEMON_START_SECONDS:g} s; see {log_path}")


def _git(repo: Path, *args: str) -> None:
    env = {key: value for key, value in os.environ.items()
           if key not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")}
    env.update(GIT_AUTHOR_NAME=DEMO_AUTHOR_NAME, GIT_AUTHOR_EMAIL=DEMO_AUTHOR_EMAIL,
               GIT_COMMITTER_NAME=DEMO_AUTHOR_NAME, GIT_COMMITTER_EMAIL=DEMO_AUTHOR_EMAIL)
    command = ["git", "-C", str(repo),
               "-c", f"user.name={DEMO_AUTHOR_NAME}", "-c", f"user.email={DEMO_AUTHOR_EMAIL}",
               "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false",
               *args]
    try:
        subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise CliError("git is not on PATH; the demo needs it to make a sample repository") from None
    except subprocess.CalledProcessError as exc:
        raise CliError(f"git {' '.join(args)} failed in {repo}: {(exc.stderr or '').strip()}") from None


def create_sample_repo(parent: Path) -> Path:
    """A fresh repository with the two files the demo scripts expect, committed on `main`."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    repo = parent / f"greeter-{stamp}"
    suffix = 1
    while True:
        try:
            repo.mkdir()
            break
        except FileExistsError:  # two demos in the same second
            suffix += 1
            repo = parent / f"greeter-{stamp}-{suffix}"
    for name, content in DEMO_FILES.items():
        (repo / name).write_bytes(content.encode())
    # `git init -b` needs git 2.28; pointing HEAD at main works with every git kilod supports.
    _git(repo, "init", "-q")
    _git(repo, "symbolic-ref", "HEAD", "refs/heads/main")
    _git(repo, "add", "--", *DEMO_FILES)
    _git(repo, "commit", "-q", "-m", "Greeter: greet(name)")
    return repo


class SettleWatcher:
    """Tells the live board when every attempt of the card has left queued/starting/running.

    When the board is not drawn live (no terminal), it also prints each state change
    as a line, so a log of the demo shows progress rather than silence.
    """

    def __init__(self, client: Client, card_id: str, print_changes: bool) -> None:
        self.client = client
        self.card_id = card_id
        self.print_changes = print_changes
        self.states: dict[str, str] = {}
        self.card: dict[str, Any] = {}

    def __call__(self, board: dict[str, Any]) -> bool:
        from kilod_cli.boardtext import find_card

        card = find_card(board, self.card_id) or self.client.get(f"/v1/cards/{segment(self.card_id)}")
        self.card = card
        attempts: list[dict[str, Any]] = card.get("attempts") or []
        for attempt in attempts:
            state = str(attempt["state"])
            if self.print_changes and self.states.get(attempt["id"]) != state:
                _say(f"{attempt['id']}  {attempt['model']}  {state}")
            self.states[attempt["id"]] = state
        live = self.client.meta().live_states
        return bool(attempts) and all(str(a["state"]) not in live for a in attempts)


def install_demo_agents() -> None:
    """Claude Code and Codex for `--agents`: hundreds of MB, downloaded once per machine."""
    from kilod.agents.install import InstallError, current, install

    for name in AGENT_DEMO_AGENTS:
        if current(data_dir(), name) is None:
            try:
                install(name, data_dir())
            except InstallError as exc:
                raise CliError(f"cannot install {name} for the demo: {exc}") from None


def run_demo(client: Client, agents: bool = False) -> int:
    from kilod_cli.boardview import watch_board
    from kilod_cli.render import diffstat_lines, make_console, print_lines

    models = AGENT_DEMO_MODELS if agents else DEMO_MODELS
    if agents:
        _say("[0/5] agents: Claude Code and Codex (kilod agents install)")
        install_demo_agents()

    _say("[1/5] sandbox image")
    built = run_build(["sandbox"])
    if built == EXIT_INTERRUPTED:
        return built
    if built != 0:
        raise CliError(f"building the sandbox image failed (exit {built}); see the messages above, "
                       "and 'kilod doctor'")

    _say("[2/5] daemon")
    started_log = ensure_daemon(client)

    _say("[3/5] sample repository")
    repo = create_sample_repo(data_dir() / "demo")
    _say(f"created {repo}")

    _say("[4/5] card")
    card = client.post("/v1/cards", {"prompt": DEMO_PROMPT, "repo": str(repo), "models": models})
    card_id = str(card["id"])
    _say(f"card {card_id}: {len(card['attempts'])} attempts ({', '.join(models)})")

    _say("[5/5] agents at work")
    stdout = make_console()
    # The live board is progress, not data: it goes to stderr when stdout is a file or a pipe.
    board_console = stdout if stdout.is_terminal else make_console(stderr=True)
    watcher = SettleWatcher(client, card_id, print_changes=not board_console.is_terminal)
    feed = ChangeFeed.start(client)  # redraw when the daemon says something happened
    try:
        watch_board(board_console, lambda: client.get("/v1/board"), watcher, changes=feed)
    except KeyboardInterrupt:
        _say("stopped watching; the attempts carry on in the daemon ('kilod ctl board --watch')")
        return EXIT_INTERRUPTED
    finally:
        if feed is not None:
            feed.close()
    attempts: list[dict[str, Any]] = watcher.card.get("attempts") or []

    failed = [a for a in attempts if a["state"] in FAILED]
    for attempt in failed:
        print(f"kilod: attempt {attempt['id']} ({attempt['model']}) {attempt['state']}: "
              f"{attempt.get('error') or 'no error recorded'}", file=sys.stderr)
    if failed:
        _say(f"see what happened: kilod ctl logs {failed[0]['id']}"
             + (f"; daemon log: {started_log}" if started_log else ""))
        return 1

    from rich.text import Text

    for attempt in attempts:
        stdout.print()
        header = Text(str(attempt["id"]), style="bold cyan")
        header.append(f"  {attempt.get('agent', 'builtin')}  {attempt['model']}  {attempt['state']}")
        stdout.print(header, soft_wrap=True)
        if attempt.get("summary"):
            stdout.print(Text(f"  {attempt['summary']}", style="dim"), soft_wrap=True)
        try:
            diffstat = client.get(f"/v1/attempts/{segment(str(attempt['id']))}/diffstat")
        except ApiError as exc:
            stdout.print(Text(f" (no diffstat: {exc.message})", style="dim"), soft_wrap=True)
            continue
        print_lines(stdout, diffstat_lines(diffstat))

    first = attempts[0] if attempts else {"id": "<attempt>", "worktree": "<worktree>"}
    _say("")
    _say("next steps:")
    steps = [
        ("kilod ctl board", "the board (--watch to follow it live)"),
        (f"kilod ctl show {card_id}", "the card, its attempts side by side"),
        (f"kilod ctl logs {first['id']}", "what one agent did, step by step"),
        (f"cd {first['worktree']}", "that attempt's worktree: git diff shows its change"),
        ("kilod ctl shutdown", "stop the daemon (it keeps running until then)"),
    ]
    width = max(len(command) for command, _ in steps) + 2
    for command, what in steps:
        _say(f"  {command:<{width}}{what}")
    return 0
