"""Approving from the Log tab, with the diff never loaded: the page shows what will land and asks first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kilod_testing import git, make_repo
from tests.web.conftest import WebDaemon

pytestmark = pytest.mark.docker


def test_approve_from_the_log_tab_shows_the_diff_and_asks_before_anything_lands(
        web_daemon_factory: Any, page: Any, tmp_path: Path, shots: Path) -> None:
    web: WebDaemon = web_daemon_factory()
    daemon = web.daemon
    repo = make_repo(tmp_path / "repo")
    card = daemon.request("POST", "/v1/cards", {"prompt": "write it", "title": "Steady", "repo": str(repo),
                                                "models": ["scripted/steady"]})
    attempt_id = card["attempts"][0]["id"]
    approvals: list[dict[str, Any]] = []
    page.on("request", lambda r: approvals.append(r.post_data_json) if r.url.endswith("/approve") else None)

    # opened while the attempt works: the page stays on its Log tab as it reaches review
    page.goto(web.login_url())
    page.goto(f"{web.origin}/#/cards/{card['id']}/{attempt_id}")
    expect(page.get_by_role("tab", name="Log")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".attempt-head .state-badge")).to_have_text("review", timeout=120_000)
    expect(page.get_by_role("tab", name="Log")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".diff-file")).to_have_count(0)  # no diff was ever loaded

    side = page.locator(".review-side")
    side.get_by_role("button", name="Approve", exact=True).click()
    # the diff is fetched and shown first, then the page asks, naming what lands
    confirm = page.locator("dialog.confirm")
    expect(confirm).to_contain_text("1 file changed (+1 \u22120): steady.txt")  # U+2212, as drawn
    expect(page.get_by_role("tab", name="Diff")).to_have_attribute("aria-selected", "true")
    expect(page.locator('.file-link[data-path="steady.txt"]')).to_be_attached()
    page.screenshot(path=str(shots / "approve-unseen.png"))
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)
    assert approvals == [] and daemon.attempt(attempt_id)["state"] == "review"  # nothing landed unasked

    # the diff is on screen now: approving sends the tree it showed, and lands it
    tree = daemon.request("GET", f"/v1/attempts/{attempt_id}/diff")["tree"]
    side.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator(".action-status")).to_contain_text("Committed", timeout=60_000)
    assert len(approvals) == 1 and approvals[0]["tree"] == tree
    approved = daemon.attempt(attempt_id)
    assert approved["state"] == "approved"
    assert git(repo, "rev-parse", f"{approved['landed_commit']}^{{tree}}").strip() == tree
    assert [e for e in page.console_errors if "Failed to load resource" not in e] == []
