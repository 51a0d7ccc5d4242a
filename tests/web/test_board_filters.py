"""The board in a real browser: the pipeline step on chips, filters and search, j/k and /, and a phone's
single column with tabs (model names wrap at their slashes only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kilod_testing import make_repo
from tests.web.conftest import WebDaemon, trust
from tests.web.test_board_flow import in_column, script_errors, shoot

pytestmark = pytest.mark.docker

LONG = "descriptive-long-model-name-for-phones"
SLOW_SETUP = 'setup = ["echo warming up; sleep 6"]\n'

# Where each line of an element's text starts: the character before every wrap.
WRAPPED_AFTER = """(el) => {
  const found = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  let top = null, previous = "";
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (!rect) continue;
      if (top !== null && rect.top > top + 2) found.push(previous);
      top = rect.top;
      previous = node.data[i];
    }
  }
  return found;
}"""


def test_steps_filters_keys_and_a_phone(web_daemon_factory: Any, page: Any, tmp_path: Path, shots: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    hello = json.loads((Path(__file__).resolve().parents[2] / "daemon/kilod/agent/scripts/hello.json").read_text())
    (scripts / f"{LONG}.json").write_text(json.dumps(hello))
    web: WebDaemon = web_daemon_factory({"KILOD_SCRIPTS_DIR": str(scripts)})
    daemon = web.daemon
    plain = make_repo(tmp_path / "plain")
    slow = make_repo(tmp_path / "slow", {"README.md": "# slow\n", ".kilod.toml": SLOW_SETUP})
    trust(daemon, slow)

    page.goto(web.login_url())
    expect(page.locator("#connection")).to_have_text("live")
    alpha = daemon.request("POST", "/v1/cards", {"prompt": "Say hello", "title": "Alpha greeting",
                                                 "repo": str(plain), "models": ["scripted/hello"]})
    beta = daemon.request("POST", "/v1/cards", {"prompt": "Say hello slowly", "title": "Beta slow setup",
                                                "repo": str(slow), "models": [f"scripted/{LONG}"]})

    # progress: while setup runs, the chip names the step
    beta_chip = page.locator(f'[data-card-id="{beta["id"]}"] .chip')
    expect(beta_chip).to_have_attribute("data-step", "setup", timeout=90_000)
    expect(beta_chip.locator(".chip-state")).to_contain_text("running · setup")
    for card in (alpha, beta):
        daemon.wait_state(card["attempts"][0]["id"], "review", timeout=180)
    expect(in_column(page, "review", beta["id"]).locator(".chip")).to_have_attribute("data-step", "")
    expect(in_column(page, "review", alpha["id"])).to_be_visible()
    cards = page.locator(".board .card")
    expect(cards).to_have_count(2)

    # filters: repository, model, state, text; each narrows the board, clearing brings everything back
    page.select_option("#filter-repo", str(slow))
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("data-card-id", beta["id"])
    expect(page.locator(".filter-count")).to_have_text("1 of 2 cards")
    page.get_by_role("button", name="Clear filters").click()
    expect(cards).to_have_count(2)
    page.select_option("#filter-model", "scripted/hello")
    expect(cards).to_have_count(1)
    expect(cards.first).to_have_attribute("data-card-id", alpha["id"])
    page.select_option("#filter-model", "")
    page.select_option("#filter-state", "approved")
    expect(cards).to_have_count(0)
    expect(page.locator('[data-column="todo"] .empty-note')).to_have_text("No card matches.")
    page.select_option("#filter-state", "review")
    expect(cards).to_have_count(2)
    page.select_option("#filter-state", "")

    # keys: / searches; Escape leaves the box empty; j and k walk the cards shown
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    expect(page.locator("#board-search")).to_be_focused()
    page.keyboard.type("alpha")
    expect(cards).to_have_count(1)
    page.keyboard.press("Escape")
    expect(cards).to_have_count(2)
    page.keyboard.press("j")
    expect(cards.nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(cards.nth(1)).to_be_focused()
    page.keyboard.press("k")
    expect(cards.nth(0)).to_be_focused()
    shoot(page, shots / "board-filters-light.png", "light", full_page=False)
    page.emulate_media(color_scheme="light")

    # a phone: one column at a time, chosen with tabs; nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    tabs = page.locator(".column-tabs")
    expect(tabs).to_be_visible()
    expect(page.locator(".board .column:visible")).to_have_count(1)
    expect(page.locator('.column-tab[data-column="review"]')).to_have_attribute("aria-selected", "true")
    expect(page.locator('.column-tab[data-column="review"] .count')).to_have_text("2")
    page.locator('.column-tab[data-column="todo"]').click()
    expect(page.locator('.board .column[data-column="todo"]')).to_be_visible()
    expect(page.locator('.board .column[data-column="review"]')).to_be_hidden()
    page.locator('.column-tab[data-column="review"]').click()
    model = in_column(page, "review", beta["id"]).locator(".chip-model")
    expect(model).to_be_visible()
    wider = page.evaluate("""() => [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > 390 && el.getClientRects().length)
      .map((el) => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)""")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wider
    wraps = model.evaluate(WRAPPED_AFTER)
    assert wraps in ([], ["/"]), f"the model name wraps inside a word: {wraps}"
    box = model.bounding_box()
    assert box["width"] <= 390 and model.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1")
    shoot(page, shots / "mobile-light.png", "light")
    shoot(page, shots / "mobile-dark.png", "dark")
    assert script_errors(page) == []


def test_a_card_whose_only_attempt_failed_is_closed_not_in_review(web_daemon_factory: Any, page: Any,
                                                                   tmp_path: Path) -> None:
    web: WebDaemon = web_daemon_factory()
    repo = make_repo(tmp_path / "broken", {"README.md": "# broken\n", ".kilod.toml": 'setup = ["exit 4"]\n'})
    trust(web.daemon, repo)
    card = web.daemon.request("POST", "/v1/cards", {"prompt": "Say hello", "title": "Broken setup",
                                                    "repo": str(repo), "models": ["scripted/hello"]})
    failed = web.daemon.wait_state(card["attempts"][0]["id"], "failed", timeout=180)
    assert "setup command failed" in failed["error"]
    page.goto(web.login_url())
    closed = in_column(page, "closed", card["id"])
    expect(closed).to_be_visible()
    expect(closed.locator(".chip")).to_have_attribute("data-state", "failed")
    expect(page.locator('[data-column="review"] .card')).to_have_count(0)
    expect(page.locator('.column[data-column="closed"] h2')).to_contain_text("Closed")
    # the log says which setup command failed, and how
    closed.click()
    entries = page.locator(".log-entry.kind-log").filter(has_text="$ exit 4")
    expect(entries).to_have_count(2)  # its start, marked as it ended, then its end
    expect(entries.first).to_contain_text("✗ failed")
    expect(entries.last).to_contain_text("✗ failed")
    expect(entries.last).to_contain_text("exit 4")
    expect(page.locator(".card-head .column-badge")).to_have_text("Closed")
    assert script_errors(page) == []
