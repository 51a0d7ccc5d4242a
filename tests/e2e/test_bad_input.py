"""Bad input gets a 4xx JSON error that names the problem, and creates nothing."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.kilod_testing import ApiError, DaemonProcess, git


def cases(repo: Path, plain_dir: Path) -> list[tuple[str, Any, str]]:
    return [
        ("missing prompt", {"repo": str(repo)}, "prompt: Field required"),
        ("empty prompt", {"prompt": "  ", "repo": str(repo)}, "prompt"),
        ("missing repo", {"prompt": "x"}, "repo: Field required"),
        ("path that does not exist", {"prompt": "x", "repo": "/no/such/kilod/path"}, "does not exist"),
        ("relative path", {"prompt": "x", "repo": "repo"}, "absolute path"),
        ("not a git repository", {"prompt": "x", "repo": str(plain_dir)}, "not a git repository"),
        ("unknown base ref", {"prompt": "x", "repo": str(repo), "base": "no-such-branch"}, "unknown base ref"),
        ("option-like base ref", {"prompt": "x", "repo": str(repo), "base": "--all"}, "unknown base ref"),
        ("unknown model provider", {"prompt": "x", "repo": str(repo), "models": ["nosuchprovider/m1"]},
         "unknown model provider"),
        ("unknown script", {"prompt": "x", "repo": str(repo), "models": ["scripted/no-such-script"]},
         "no script named"),
        ("no models", {"prompt": "x", "repo": str(repo), "models": []}, "models"),
        ("unknown field", {"prompt": "x", "repo": str(repo), "colour": "red"}, "colour: unknown field"),
        ("wrong type", {"prompt": "x", "repo": str(repo), "network": "sometimes"}, "network"),
        ("not an object", ["prompt"], "JSON object"),
        ("malformed JSON", b'{"prompt": "x", ', "malformed JSON"),
        ("empty body", b"", "empty"),
    ]


def test_every_bad_request_is_a_400_naming_the_problem_and_creates_nothing(
    daemon: DaemonProcess, repo: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    branches_before = git(repo, "branch", "--list")
    for name, body, expected in cases(repo, plain):
        with pytest.raises(ApiError) as caught:
            if isinstance(body, bytes):
                daemon.request("POST", "/v1/cards", raw=body)
            else:
                daemon.request("POST", "/v1/cards", body)
        error = caught.value
        assert error.status == 400, name
        assert expected in error.body["error"]["message"], (name, error.body)

    assert daemon.request("GET", "/v1/cards") == {"cards": []}
    assert list((daemon.data_dir / "worktrees").iterdir()) == []
    assert git(repo, "branch", "--list") == branches_before
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    client = docker.from_env()
    assert client.containers.list(all=True, filters={"label": f"kilod.instance={daemon.instance}"}) == []


def test_unknown_ids_and_routes_are_404_json(daemon: DaemonProcess) -> None:
    for path in ("/v1/cards/nope", "/v1/attempts/nope-1", "/v1/attempts/nope-1/events", "/v1/nothing"):
        with pytest.raises(ApiError) as caught:
            daemon.request("GET", path)
        assert caught.value.status == 404
        assert caught.value.body["error"]["message"]
    with pytest.raises(ApiError) as caught:
        daemon.request("GET", "/v1/events?after=yesterday")
    assert caught.value.status == 400


def test_request_fields_are_not_coerced(daemon: DaemonProcess, repo: Path) -> None:
    for field, value in (("repeat", True), ("network", "yes"), ("network", 1), ("repeat", "2"),
                         ("budget", {"tokens": "100"}), ("prompt", 5)):
        with pytest.raises(ApiError) as caught:
            daemon.request("POST", "/v1/cards", {"prompt": "x", "repo": str(repo), field: value})
        assert caught.value.status == 400, (field, value)
        assert field in caught.value.body["error"]["message"], caught.value.body
    assert daemon.request("GET", "/v1/cards") == {"cards": []}


def test_a_body_longer_than_allowed_is_refused_at_once_not_waited_for(daemon: DaemonProcess) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)  # far longer than an answer takes; a daemon waiting for 93 GiB never answers
    sock.connect(str(daemon.socket))
    try:
        sock.sendall(b"POST /v1/cards HTTP/1.1\r\nHost: kilod\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 99999999999\r\n\r\n{")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {answer!r}"
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), head
        while True:  # the daemon closes the connection; it does not wait for the rest of the body
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    finally:
        sock.close()
    assert b"too large" in body
    assert daemon.request("GET", "/healthz")["ok"] is True


def test_a_bad_per_column_is_a_400_and_a_good_one_keeps_the_counts(daemon: DaemonProcess) -> None:
    for value in ("-1", "many", "1.5", "9999999"):
        with pytest.raises(ApiError) as caught:
            daemon.request("GET", f"/v1/board?per_column={value}")
        assert caught.value.status == 400
        assert "per_column" in caught.value.body["error"]["message"]
    whole = daemon.request("GET", "/v1/board")
    none = daemon.request("GET", "/v1/board?per_column=0")
    assert [c["count"] for c in none["columns"]] == [len(c["cards"]) for c in whole["columns"]]
    assert all(c["cards"] == [] for c in none["columns"])
