"""The card page's Log tab shows setup and check output live, under the command that runs it (real daemon,
real containers, Chromium). Each command waits for a file the test creates only once the page shows the
command's first line: the command cannot have ended before, so that line was live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kilod_testing import make_repo
from tests.web.conftest import WebDaemon
from tests.web.test_board_flow import in_column, script_errors, shoot

pytestmark = pytest.mark.docker

SETUP = "echo ready; while [ ! -f /workspace/.go ]; do sleep 0.1; done; echo finished"
CHECK = "echo checking; while [ ! -f /workspace/.go-check ]; do sleep 0.1; done; echo checked"


def test_setup_and_check_output_appear_live_under_their_command(web_daemon: WebDaemon, page: Any,
                                                                 tmp_path: Path, shots: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    card = web_daemon.daemon.request("POST", "/v1/cards", {
        "prompt": "say hello", "title": "Live setup", "repo": str(repo), "models": ["scripted/hello"],
        "settings": {"setup": [SETUP], "checks": [{"name": "waiter", "run": CHECK}]}})
    attempt = card["attempts"][0]
    worktree = Path(web_daemon.daemon.attempt(attempt["id"])["worktree"])

    page.goto(web_daemon.login_url())
    chip = in_column(page, "doing", card["id"]).locator(".chip")
    expect(chip.locator(".chip-step")).to_contain_text("setup", timeout=60_000)  # where it stands, once there
    in_column(page, "doing", card["id"]).click()
    expect(page.get_by_role("tab", name="Log")).to_have_attribute("aria-selected", "true")

    setup = page.locator(".log-entry.command-entry").filter(has_text=f"$ {SETUP}")
    expect(setup.locator(".live-output")).to_have_text("ready\n")
    expect(setup).to_contain_text("… running")
    shoot(page, shots / "live-setup.png", "light")
    worktree.joinpath(".go").write_text("")
    expect(setup.locator(".live-output")).to_have_text("ready\nfinished\n")
    expect(setup).to_contain_text("✓ passed")

    check = page.locator(".log-entry.command-entry").filter(has_text=f"$ {CHECK}")
    expect(check.locator(".live-output")).to_have_text("checking\n", timeout=120_000)  # after the agent
    expect(check).to_contain_text("… running")
    expect(check).to_contain_text("waiter")
    worktree.joinpath(".go-check").write_text("")
    expect(check.locator(".live-output")).to_have_text("checking\nchecked\n")
    expect(check).to_contain_text("✓ passed")

    # every output event joined its command: none stands alone, none is shown as JSON
    expect(page.locator(".log-entry.kind-output")).to_have_count(0)
    expect(page.locator(".log-entry.kind-check")).to_contain_text("✓ passed")
    bodies = page.locator(".log-entry .log-body").all_inner_texts()
    assert bodies and not any(text.lstrip().startswith("{") for text in bodies), bodies
    web_daemon.daemon.wait_state(attempt["id"], "review")
    assert script_errors(page) == []
