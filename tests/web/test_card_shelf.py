"""Archive and delete in a real browser against a real daemon, real containers and a real repository:
nothing waiting is hidden, delete asks and discards first, approved work stays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest
from playwright.sync_api import expect

from tests.kilod_testing import ApiError, git, make_repo
from tests.web.conftest import WebDaemon
from tests.web.test_board_flow import in_column, script_errors

pytestmark = pytest.mark.docker


def test_archive_and_delete_lose_nothing_a_person_kept(web_daemon_factory: Any, page: Any, tmp_path: Path) -> None:
    web: WebDaemon = web_daemon_factory()
    daemon = web.daemon
    repo = make_repo(tmp_path / "repo")
    kept = daemon.request("POST", "/v1/cards", {"prompt": "Say hello", "title": "Kept work", "repo": str(repo),
                                                "models": ["scripted/hello"]})
    pending = daemon.request("POST", "/v1/cards", {"prompt": "Say hello", "title": "Pending work", "repo": str(repo),
                                                   "models": ["scripted/hello"]})
    kept_attempt, pending_attempt = kept["attempts"][0]["id"], pending["attempts"][0]["id"]
    for attempt_id in (kept_attempt, pending_attempt):
        daemon.wait_state(attempt_id, "review")
    reviewed = daemon.request("GET", f"/v1/attempts/{kept_attempt}/diff")
    daemon.request("POST", f"/v1/attempts/{kept_attempt}/approve", {"tree": reviewed["tree"]})
    pending_worktree = Path(daemon.attempt(pending_attempt)["worktree"])

    page.goto(web.login_url())
    expect(in_column(page, "done", kept["id"])).to_be_visible()

    # an attempt waiting in review is not something to hide: archive says why, and nothing changes
    page.goto(f"{web.origin}/#/cards/{pending['id']}")
    page.get_by_role("button", name="Archive").click()
    expect(page.locator(".head-error")).to_contain_text("approve, discard or cancel")
    assert daemon.request("GET", f"/v1/cards/{pending['id']}")["archived_at"] is None

    # delete asks, names what it discards, then discards it: container, worktree and branch gone
    page.get_by_role("button", name="Delete…").click()
    confirm = page.locator("dialog.confirm")
    expect(confirm).to_contain_text("scripted/hello, review")
    confirm.get_by_role("button", name="Cancel").click()
    assert daemon.attempt(pending_attempt)["state"] == "review"
    page.get_by_role("button", name="Delete…").click()
    confirm.get_by_role("button", name="Delete card").click()
    expect(page).to_have_url(f"{web.origin}/#/")
    expect(page.locator(f'[data-card-id="{pending["id"]}"]')).to_have_count(0)
    with pytest.raises(ApiError) as missing:
        daemon.request("GET", f"/v1/cards/{pending['id']}")
    assert missing.value.status == 404
    assert git(repo, "branch", "--list", f"kilod/{pending_attempt}") == ""
    assert not pending_worktree.exists()
    assert docker.from_env().containers.list(all=True, filters={"label": f"kilod.attempt={pending_attempt}"}) == []

    # archive: off the board, still listed, shown on demand, and back with Unarchive
    page.goto(f"{web.origin}/#/cards/{kept['id']}")
    page.get_by_role("button", name="Archive").click()
    expect(page.locator(".archived-note")).to_contain_text("Archived")
    board = daemon.request("GET", "/v1/board")
    assert all(kept["id"] != c["id"] for column in board["columns"] for c in column["cards"])
    assert [c["id"] for c in daemon.request("GET", "/v1/cards")["cards"]] == [kept["id"]]
    page.get_by_role("link", name="← Board").click()
    expect(page.locator(".board .card")).to_have_count(0)
    page.locator("#show-archived").check()
    expect(in_column(page, "done", kept["id"])).to_be_visible()
    in_column(page, "done", kept["id"]).click()
    page.get_by_role("button", name="Unarchive").click()
    expect(page.locator(".archived-note")).to_have_count(0)
    assert daemon.request("GET", f"/v1/cards/{kept['id']}")["archived_at"] is None

    # deleting a card keeps its approved branch: the landed commit stays in the repository
    landed = daemon.attempt(kept_attempt)["landed_commit"]
    deleted = daemon.request("DELETE", f"/v1/cards/{kept['id']}")
    assert deleted == {"card_id": kept["id"], "discarded": [], "kept_branches": [f"kilod/{kept_attempt}"]}
    assert git(repo, "rev-parse", f"refs/heads/kilod/{kept_attempt}").strip() == landed
    assert daemon.request("GET", "/v1/cards")["cards"] == []
    assert script_errors(page) == []
