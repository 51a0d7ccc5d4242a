"""The board follows the daemon through a restart: the stream reconnects and the session survives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kilod_testing import make_repo
from tests.web.conftest import WebDaemon
from tests.web.test_board_flow import script_errors

pytestmark = pytest.mark.docker


def test_board_reconnects_after_a_restart(web_daemon_factory: Any, page: Any, tmp_path: Path) -> None:
    web: WebDaemon = web_daemon_factory()
    repo = make_repo(tmp_path / "repo")
    page.goto(web.login_url())
    expect(page.locator("#connection")).to_have_text("live")

    web.daemon.stop()
    expect(page.locator("#connection")).not_to_have_text("live")
    web.daemon.start()
    # the session cookie is signed with the token kept in the data dir: still good after the restart
    expect(page.locator("#connection")).to_have_text("live", timeout=30_000)
    card = web.daemon.request("POST", "/v1/cards", {"prompt": "after the restart", "repo": str(repo),
                                                     "models": ["scripted/hello"]})
    expect(page.locator(f'[data-card-id="{card["id"]}"]')).to_be_visible()
    expect(page.locator(f'[data-column="review"] [data-card-id="{card["id"]}"]')).to_be_visible(timeout=60_000)
    assert not page.locator("#banner").is_visible()
    assert script_errors(page) == []
