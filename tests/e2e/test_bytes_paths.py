"""File names are bytes: a name that is not UTF-8 is shown escaped and lands byte for byte; a FIFO is named."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from tests.kilod_testing import DaemonProcess, UnixHTTPConnection, git

from .test_review import run_card

NAMES = [b"bad\xffname", b"dir\xe9/caf\xe9.txt", b'tab\there "q"']


def raw_get(daemon: DaemonProcess, path: str) -> tuple[int, bytes]:
    connection = UnixHTTPConnection(daemon.socket)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def tree_names(repo: Path, rev: str) -> set[bytes]:
    import subprocess

    out = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "-z", "--name-only", rev], check=True,
                         capture_output=True).stdout
    return {name for name in out.split(b"\0") if name}


def test_names_that_are_not_utf8_through_diff_compare_approve_and_merge(daemon: DaemonProcess, repo: Path) -> None:
    attempt = run_card(daemon, repo, "scripted/badname")
    attempt_id = attempt["id"]

    diff = daemon.request("GET", f"/v1/attempts/{attempt_id}/diff")
    by_bytes = {base64.b64decode(f["path_base64"]): f for f in diff["files"]}
    assert set(by_bytes) == set(NAMES)
    assert by_bytes[b"bad\xffname"]["path"] == "bad\\xffname"      # shown escaped, never as a broken string
    assert by_bytes[b"dir\xe9/caf\xe9.txt"]["path"] == "dir\\xe9/caf\\xe9.txt"
    assert by_bytes[b'tab\there "q"']["path"] == 'tab\there "q"'   # valid UTF-8 stays as it is
    assert all(f["status"] == "added" and f["additions"] == 1 for f in diff["files"])
    # a FIFO cannot be in a commit: named with a note, never silently dropped
    assert [(i["path"], i["reason"]) for i in diff["left_out"]] == [("pipe", "unsupported file type")]
    assert "FIFO" in diff["left_out"][0]["note"] and "files left out" in diff["risks"]

    status, text = raw_get(daemon, f"/v1/attempts/{attempt_id}/diff?format=text")
    assert status == 200 and b"+latin-1\n" in text
    assert b"diff --git a/bad\xffname b/bad\xffname" in text  # git's own bytes, as git prints them

    stat = daemon.request("GET", f"/v1/attempts/{attempt_id}/diffstat")
    assert sorted(f["path"] for f in stat["files"]) == sorted(f["path"] for f in diff["files"])
    compare = daemon.request("GET", f"/v1/cards/{attempt['card_id']}/compare")
    assert compare["rows"][0]["files_changed"] == 3 and "bad\\xffname" in compare["rows"][0]["files"]
    comment = daemon.request("POST", f"/v1/attempts/{attempt_id}/comments",
                             {"path": "bad\\xffname", "line": 1, "text": "odd name"})
    assert comment["path"] == "bad\\xffname"

    result = daemon.request("POST", f"/v1/attempts/{attempt_id}/approve", {"merge": True, "tree": diff["tree"]})
    assert set(NAMES) <= tree_names(repo, result["commit"])
    assert git(repo, "rev-parse", "main").strip() == result["merge"]["head"]
    assert (repo / os.fsdecode(b"bad\xffname")).read_bytes() == b"latin-1\n"
    assert (repo / os.fsdecode(b"dir\xe9/caf\xe9.txt")).read_bytes() == b"inside\n"
    assert git(repo, "status", "--porcelain") == ""
