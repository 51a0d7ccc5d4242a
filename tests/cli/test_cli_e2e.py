"""Cards from the command line to the repository, with a real daemon, real Docker and the
scripted agent: new → review → diff → comment → approve --merge; two models → compare → pick."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.kilod_testing import DaemonProcess, git

from .conftest import CliEnv

pytestmark = pytest.mark.docker

HELLO = "# Hello from kilod\n\nThis file was written by the scripted agent inside its sandbox.\n"


def test_a_card_reviewed_and_merged_through_the_cli(cli: CliEnv, daemon: DaemonProcess, repo: Path) -> None:
    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return cli.run("--socket", str(daemon.socket), "ctl", *args)

    base = git(repo, "rev-parse", "main").strip()
    created = ctl("new", "say hello", "--repo", str(repo), "-m", "scripted/hello")
    assert created.returncode == 0, created.stderr
    card_id, attempt_line = created.stdout.splitlines()
    attempt_id, model = attempt_line.split()
    assert model == "scripted/hello"
    # follows live until the attempt rests, which the CLI learns from the daemon's GET /v1/meta
    followed = ctl("logs", attempt_id, "-f")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines()[-1].endswith("running → REVIEW")
    daemon.wait_state(attempt_id, "review")
    board = ctl("board", "--state", "review", "--repo", str(repo))
    assert board.returncode == 0, board.stderr
    assert card_id in board.stdout and "Review (1)" in board.stdout

    piped = ctl("diff", attempt_id)
    assert piped.returncode == 0, piped.stderr
    both = daemon.request("GET", f"/v1/attempts/{attempt_id}/diff?format=both")
    assert piped.stdout == both["text"]  # the daemon's unified diff, exactly
    assert "+# Hello from kilod" in piped.stdout

    as_json = json.loads(ctl("diff", attempt_id, "--json").stdout)
    assert [(f["path"], f["status"], f["additions"]) for f in as_json["files"]] == [("HELLO.md", "added", 3)]
    stat = ctl("diff", attempt_id, "--stat")
    assert stat.stdout.splitlines() == [" HELLO.md | 3 +++", " 1 file changed, 3 insertions(+)"]

    commented = ctl("comment", attempt_id, "HELLO.md:1", "a fine title")
    assert commented.returncode == 0, commented.stderr
    listed = ctl("comments", attempt_id)
    assert "HELLO.md:1" in listed.stdout and "a fine title" in listed.stdout

    merged = ctl("approve", attempt_id, "--merge", "-m", "Say hello", "--tree", as_json["tree"])
    assert merged.returncode == 0, merged.stderr
    lines = dict(line.split(None, 1) for line in merged.stdout.splitlines())
    head = git(repo, "rev-parse", "main").strip()
    assert head != base
    assert lines["commit"] == head  # a fast-forward: main is the approved commit
    assert lines["merged"] == f"into main (fast-forward), now at {head[:12]}"
    assert lines["checkout"] == f"{repo} updated"  # the clean main checkout was brought along
    assert (repo / "HELLO.md").read_text() == HELLO
    assert git(repo, "log", "-1", "--format=%s").strip() == "Say hello"
    assert git(repo, "status", "--porcelain") == ""
    assert daemon.attempt(attempt_id)["state"] == "approved"
    assert ctl("show", card_id, "--json").returncode == 0


def test_two_models_compared_and_one_picked_through_the_cli(cli: CliEnv, daemon: DaemonProcess, repo: Path) -> None:
    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return cli.run("--socket", str(daemon.socket), "ctl", *args)

    created = ctl("new", "say hello", "--repo", str(repo), "-m", "scripted/hello", "-m", "scripted/steady")
    assert created.returncode == 0, created.stderr
    card_id, *attempt_lines = created.stdout.splitlines()
    attempts = [text.split() for text in attempt_lines]
    assert [model for _, model in attempts] == ["scripted/hello", "scripted/steady"]
    first, second = (attempt_id for attempt_id, _ in attempts)
    for attempt_id in (first, second):
        daemon.wait_state(attempt_id, "review")

    compared = ctl("compare", card_id, "--json")
    assert compared.returncode == 0, compared.stderr
    rows = json.loads(compared.stdout)["rows"]
    assert [(r["attempt_id"], r["model"], r["files"]) for r in rows] == [
        (first, "scripted/hello", ["HELLO.md"]), (second, "scripted/steady", ["steady.txt"])]
    table = ctl("compare", card_id)
    assert table.returncode == 0, table.stderr
    assert "overlap: none" in table.stdout
    one_file = ctl("compare", card_id, "--diff", "steady.txt")
    assert one_file.stdout.startswith(f"### attempt {first} (scripted/hello)\nnot changed by this attempt\n"
                                      f"### attempt {second} (scripted/steady)\ndiff --git a/steady.txt")

    picked = ctl("pick", first, "--yes")
    assert picked.returncode == 0, picked.stderr
    assert f"discarded  {second}" in picked.stdout.splitlines()
    assert daemon.attempt(first)["state"] == "approved"
    assert daemon.attempt(second)["state"] == "discarded"
    assert git(repo, "branch", "--list", f"kilod/{second}").strip() == ""
