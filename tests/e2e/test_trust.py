"""An agent-written .kilod.toml, merged, does not widen later cards until a person trusts it (real daemon,
real Docker, real git, the real CLI)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.kilod_testing import ApiError, DaemonProcess, git, make_repo


def ctl(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kilod_cli.main", "--socket", str(daemon.socket), "ctl", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=daemon.env)


def test_a_merged_agent_written_kilod_toml_applies_only_once_trusted(daemon: DaemonProcess, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "# r\n", ".gitignore": ".env\n"})
    (repo / ".env").write_text("API_KEY=do-not-leak\n")
    card = daemon.request("POST", "/v1/cards", {"prompt": "tidy", "repo": str(repo), "models": ["scripted/widener"]})
    attempt = daemon.wait_state(card["attempts"][0]["id"], "review")
    tree = daemon.request("GET", f"/v1/attempts/{attempt['id']}/diff")["tree"]  # approve names the reviewed tree
    daemon.request("POST", f"/v1/attempts/{attempt['id']}/approve", {"merge": True, "tree": tree})
    assert "network = true" in git(repo, "show", "main:.kilod.toml")

    later = daemon.request("POST", "/v1/cards", {"prompt": "next", "repo": str(repo), "models": ["scripted/hello"]})
    source = later["settings_source"]
    assert later["network"] is False and later["settings"]["copy"] == [] and later["settings"]["setup"] == []
    assert source["trusted"] is False and source["ignored"] == ["setup", "copy", "network"]
    done = daemon.wait_state(later["attempts"][0]["id"], "review")
    worktree = Path(done["worktree"])
    assert not (worktree / ".env").exists() and not (worktree / "widened.txt").exists()
    notes = [e["payload"]["message"] for e in daemon.events(done["id"]) if e["payload"].get("step") == "settings"]
    assert notes == [source["note"]]

    # a script cannot trust what nobody looked at: without a terminal it needs --yes
    refused = ctl(daemon, "trust", str(repo))
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert "network = true" in refused.stdout and "widens the sandbox: setup, copy, network" in refused.stderr
    with_hash = json.loads(ctl(daemon, "trust", str(repo), "--json").stdout)
    assert with_hash["trusted"] is False and with_hash["content"] == (repo / ".kilod.toml").read_text()
    try:
        daemon.request("POST", "/v1/repos/trust", {"repo": str(repo), "sha256": "0" * 64})
        raise AssertionError("a hash of other content was trusted")
    except ApiError as exc:
        assert exc.status == 409 and exc.body["error"]["current_sha256"] == with_hash["sha256"]

    trusted = ctl(daemon, "trust", str(repo), "--yes")
    assert trusted.returncode == 0, trusted.stderr
    assert daemon.request("GET", f"/v1/repos/trust?repo={repo}")["trusted"] is True
    third = daemon.request("POST", "/v1/cards", {"prompt": "now", "repo": str(repo), "models": ["scripted/hello"]})
    assert third["network"] is True and third["settings"]["copy"] == [".env", "*.pem"]
    assert third["settings_source"]["trusted"] is True and third["settings_source"]["note"] is None
    done = daemon.wait_state(third["attempts"][0]["id"], "review")
    assert (Path(done["worktree"]) / ".env").read_text() == "API_KEY=do-not-leak\n"
    assert (Path(done["worktree"]) / "widened.txt").read_text() == "widened\n"


def test_trust_requests_are_checked(daemon: DaemonProcess, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "# r\n", ".kilod.toml": "network = true\n"})
    for body, status in (({"repo": str(repo), "sha256": "not-a-hash"}, 400),
                         ({"repo": str(repo), "sha256": 7}, 400),
                         ({"repo": "relative/path", "sha256": "a" * 64}, 400),
                         ({"repo": str(repo)}, 400)):
        try:
            daemon.request("POST", "/v1/repos/trust", body)
            raise AssertionError(f"accepted {body}")
        except ApiError as exc:
            assert exc.status == status, exc.body
    try:
        daemon.request("GET", "/v1/repos/trust")
        raise AssertionError("no repo accepted")
    except ApiError as exc:
        assert exc.status == 400
    no_file = make_repo(tmp_path / "plain")
    assert ctl(daemon, "trust", str(no_file)).returncode == 0


def test_ctl_trust_asks_on_a_terminal_and_shows_hidden_characters(daemon: DaemonProcess, tmp_path: Path) -> None:
    # an escape sequence that would hide the network line on a terminal is shown, not obeyed
    sneaky = 'checks = ["true"]\nnetwork = true # \x1b[2K\x1b[1A\n'
    repo = make_repo(tmp_path / "repo", {"README.md": "# r\n", ".kilod.toml": sneaky})
    controller, terminal = pty.openpty()
    try:
        def ask(answer: bytes) -> subprocess.CompletedProcess[str]:
            os.write(controller, answer)
            return subprocess.run([sys.executable, "-m", "kilod_cli.main", "--socket", str(daemon.socket), "ctl",
                                   "trust", str(repo)], stdin=terminal, capture_output=True, text=True, timeout=60,
                                  env=daemon.env)

        declined = ask(b"n\n")
        assert declined.returncode == 1 and "not trusted" in declined.stderr
        assert "\x1b" not in declined.stdout and "␛[2K" in declined.stdout and "network = true" in declined.stdout
        assert "Trust these files' content" in declined.stderr
        assert daemon.request("GET", f"/v1/repos/trust?repo={repo}")["trusted"] is False
        accepted = ask(b"y\n")
        assert accepted.returncode == 0, accepted.stderr
        assert daemon.request("GET", f"/v1/repos/trust?repo={repo}")["trusted"] is True
        again = ask(b"")
        assert again.returncode == 0 and "already trusted" in again.stderr
    finally:
        os.close(controller)
        os.close(terminal)
