"""Review in the browser at parity with the CLI, against a real daemon and real containers:
check badges, readable setup/check logs, line comments, split view, keys, and nothing lands
on one click."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kilod_testing import git, make_repo
from tests.web.conftest import WebDaemon, trust
from tests.web.test_board_flow import in_column, script_errors, shoot

pytestmark = pytest.mark.docker

# one check passes (the agent wrote HELLO.md), one always fails; no fix rounds: the failure
# reaches review as it is (the built-in agent's fix rounds are tested in tests/agent)
KILOD_TOML = """\
fix_rounds = 0
setup = ["echo preparing the sandbox; echo setup-done"]

[[checks]]
name = "hello-written"
run = "test -f HELLO.md"

[[checks]]
name = "strict-lint"
run = "echo 'lint: 2 problems' && exit 3"
"""


def ctl(web: WebDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kilod_cli.main", "--socket", str(web.daemon.socket), "ctl", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_failing_checks_comments_and_a_guarded_approve(web_daemon_factory: Any, page: Any, tmp_path: Path,
                                                       shots: Path) -> None:
    web: WebDaemon = web_daemon_factory()
    daemon = web.daemon
    repo = make_repo(tmp_path / "repo", {"README.md": "# checked\n", ".kilod.toml": KILOD_TOML})
    trust(daemon, repo)
    card = daemon.request("POST", "/v1/cards", {"prompt": "Say hello", "title": "Checked hello", "repo": str(repo),
                                                "models": ["scripted/hello", "scripted/hello"]})
    first, second = (a["id"] for a in card["attempts"])
    for attempt_id in (first, second):
        daemon.wait_state(attempt_id, "review", timeout=180)
    assert daemon.attempt(first)["checks"] == {"passed": 1, "failed": 1, "error": 0, "total": 2, "failing": True}

    # the board: ✓ 1 / ✗ 1 on each chip
    page.goto(web.login_url())
    chip = in_column(page, "review", card["id"]).locator(f'.chip[data-attempt-id="{first}"]')
    expect(chip.locator(".check-pass")).to_have_text("✓ 1")
    expect(chip.locator(".check-fail")).to_have_text("✗ 1")

    # the card page opens the attempt in review on its diff, the review beside it (not above)
    in_column(page, "review", card["id"]).click()
    expect(page.get_by_role("tab", name="Diff")).to_have_attribute("aria-selected", "true")
    hello_file = page.locator('.diff-file[data-path="HELLO.md"]')
    expect(hello_file.locator("tr.line.add")).to_have_count(3)
    side = page.locator(".review-side")
    expect(side.get_by_role("button", name="Approve", exact=True)).to_be_visible()
    expect(side.locator(".checks-warning")).to_contain_text("1 check failing")
    page_text = page.locator(".card-page").inner_text()
    assert "null" not in page.locator(".card-head").inner_text() and "undefined" not in page_text
    diff_box = page.locator(".subpanel").bounding_box()
    side_box = side.bounding_box()
    assert side_box["x"] >= diff_box["x"] + diff_box["width"] - 1, (diff_box, side_box)
    assert side_box["y"] < diff_box["y"] + 200

    # compare: a failure never gets a star, and the highlighted row follows the tab
    compare = page.locator(".compare-table").first
    failed_cells = compare.locator("tbody td.bad")
    expect(failed_cells).to_have_count(2)
    expect(compare.locator("tbody td.bad.best")).to_have_count(0)
    expect(compare.locator("tr.selected")).to_have_attribute("data-attempt-id", first)
    page.locator(f'.attempt-tab[data-attempt-id="{second}"]').click()
    expect(compare.locator("tr.selected")).to_have_attribute("data-attempt-id", second)
    expect(compare.locator("tr.selected")).to_have_count(1)
    page.locator(f'.attempt-tab[data-attempt-id="{first}"]').click()
    expect(compare.locator("tr.selected")).to_have_attribute("data-attempt-id", first)

    # the log shows setup and checks as commands with their output, never a raw JSON payload
    page.get_by_role("tab", name="Log").click()
    setup = page.locator(".log-entry.kind-log").filter(has_text="$ echo preparing the sandbox")
    expect(setup).to_have_count(2)  # its start (its live output, then how it ended), then its result
    expect(setup.first).to_contain_text("✓ passed")
    expect(setup.first.locator(".live-output")).to_contain_text("setup-done")
    expect(setup.last).to_contain_text("✓ passed")
    expect(setup.last.locator(".output")).to_contain_text("setup-done")
    expect(page.locator(".log-entry.kind-log").filter(has_text="strict-lint")).to_contain_text("✗ failed")
    lint = page.locator(".log-entry.kind-check").filter(has_text="strict-lint")
    expect(lint).to_contain_text("✗ failed")
    expect(lint).to_contain_text("exit 3")
    expect(lint.locator(".output")).to_contain_text("lint: 2 problems")
    bodies = page.locator(".log-entry .log-body").all_inner_texts()
    assert bodies and not any(text.lstrip().startswith("{") for text in bodies), bodies

    # a comment on a line: click its number, write, save; the diff and the side list show it, ctl lists it
    page.get_by_role("tab", name="Diff").click()
    hello_file.locator('tr[data-line="1"] td.commentable').click()
    page.locator(".comment-form textarea").fill("Say who the greeting is from.")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(hello_file.locator("tr.comment-row .inline-comment")).to_contain_text("Say who the greeting is from.")
    expect(side.locator(".comment-item")).to_contain_text("HELLO.md:1")
    listed = ctl(web, "comments", first)
    assert listed.returncode == 0, listed.stderr
    assert "HELLO.md:1" in listed.stdout and "Say who the greeting is from." in listed.stdout
    # a line outside the diff is refused with the daemon's message, and nothing is stored
    page.evaluate("document.querySelector('.diff-file[data-path=\"HELLO.md\"] tr[data-line=\"3\"] td.commentable')"
                  ".dataset.n = '99'")
    hello_file.locator('tr[data-line="3"] td.commentable').click()
    page.locator(".comment-form textarea").fill("not a line of the diff")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.locator(".comment-form .form-error")).to_contain_text("not in the diff")
    page.locator(".comment-form").get_by_role("button", name="Cancel").click()
    assert len(daemon.request("GET", f"/v1/attempts/{first}/comments")["comments"]) == 1
    shoot(page, shots / "diff-comments-light.png", "light")
    shoot(page, shots / "diff-comments-dark.png", "dark")
    page.emulate_media(color_scheme="light")

    # split view: two sides, the comment stays under its line
    page.get_by_role("button", name="Split").click()
    expect(hello_file.locator("table.diff-table.split")).to_be_visible()
    expect(hello_file.locator("tr.comment-row .inline-comment")).to_contain_text("Say who the greeting is from.")
    shoot(page, shots / "diff-split-light.png", "light")
    page.emulate_media(color_scheme="light")
    page.get_by_role("button", name="Unified").click()
    expect(hello_file.locator("table.diff-table.unified")).to_be_visible()

    # keys: j moves to the next file; a asks before approving a failing attempt (cancel: nothing lands)
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("j")
    expect(page.locator(".diff-file .file-toggle:focus")).to_have_count(1)
    page.keyboard.press("a")
    confirm = page.locator("dialog.confirm")
    expect(confirm).to_contain_text("Checks failed")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)

    # "Approve and merge" asks too; cancelled, the attempt is still in review and main has not moved
    base = git(repo, "rev-parse", "main").strip()
    side.get_by_role("button", name=re.compile("Approve and merge")).click()
    expect(confirm).to_contain_text("merges it into main")
    confirm.get_by_role("button", name="Cancel").click()
    assert daemon.attempt(first)["state"] == "review"
    assert git(repo, "rev-parse", "main").strip() == base

    # approve with a commit message of the reviewer's own, confirming past the failing check
    page.locator("#commit-message").fill("Greet the reader\n\nReviewed in the browser.")
    side.get_by_role("button", name="Approve", exact=True).click()
    expect(confirm).to_contain_text("1 check failed")
    confirm.get_by_role("button", name="Approve anyway").click()
    expect(page.locator(".action-status")).to_contain_text("Committed", timeout=60_000)
    assert daemon.attempt(first)["state"] == "approved"
    message = git(repo, "log", "-1", "--format=%B", f"kilod/{first}").strip()
    assert message == "Greet the reader\n\nReviewed in the browser."
    assert script_errors(page) == []
