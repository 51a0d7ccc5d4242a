"""A 5,000-line diff in a real browser: the page draws it in parts and stays usable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kilod_testing import make_repo
from tests.web.conftest import WebDaemon
from tests.web.test_board_flow import script_errors, shoot

pytestmark = pytest.mark.docker
LINES = 5000


def big_script(folder: Path) -> None:
    content = "".join(f"def function_{i}(value):  # line {i}\n" if i % 2 == 0 else f"    return value + {i}\n"
                      for i in range(LINES))
    folder.mkdir()
    (folder / "big.json").write_text(json.dumps({"description": "writes a 5,000-line Python file", "steps": [
        {"tools": [{"name": "write_file", "arguments": {"path": "big.py", "content": content}}]},
        {"tools": [{"name": "write_file", "arguments": {"path": "small.md", "content": "# Small\n"}}]},
        {"tools": [{"name": "finish", "arguments": {"summary": "wrote a big file"}}]},
    ]}))


def test_a_5000_line_diff_stays_responsive(web_daemon_factory: Any, page: Any, tmp_path: Path, shots: Path) -> None:
    big_script(tmp_path / "scripts")
    web: WebDaemon = web_daemon_factory({"KILOD_SCRIPTS_DIR": str(tmp_path / "scripts")})
    repo = make_repo(tmp_path / "repo")
    card = web.daemon.request("POST", "/v1/cards", {"prompt": "write a lot", "repo": str(repo),
                                                     "models": ["scripted/big"]})
    web.daemon.wait_state(card["attempts"][0]["id"], "review")

    page.goto(web.login_url())
    page.goto(f"{web.origin}/#/cards/{card['id']}")
    page.get_by_role("tab", name="Diff").click()
    expect(page.locator('.file-link[data-path="big.py"]')).to_be_visible()
    expect(page.locator('.file-link[data-path="small.md"]')).to_be_visible()
    expect(page.locator(".diff-summary")).to_contain_text(f"+{LINES + 1}")
    big = page.locator('.diff-file[data-path="big.py"]')
    expect(big.locator("td.code span.k").first).to_have_text("def")
    drawn = big.locator("tr.line").count()
    assert 0 < drawn < LINES  # drawn in parts, not all at once
    assert page.evaluate("1 + 1") == 2
    shoot(page, shots / "big-diff-light.png", "light", full_page=False)
    page.emulate_media(color_scheme="light")

    # still usable: jump to the other file, draw the whole big file part by part, switch to the log
    page.locator('.file-link[data-path="small.md"]').click()
    expect(page.locator('.diff-file[data-path="small.md"] span.gh')).to_have_text("# Small")
    more = big.get_by_role("button", name="Show")
    while more.count():
        more.click()
    expect(big.locator("tr.line")).to_have_count(LINES)
    expect(big.locator("tr.line").last).to_contain_text("return value + 4999")
    assert page.evaluate("document.querySelectorAll('tr.line').length") == LINES + 1
    page.get_by_role("tab", name="Log").click()
    expect(page.locator(".log-entry.kind-tool_call").filter(has_text="big.py")).to_have_count(1)
    assert script_errors(page) == []
