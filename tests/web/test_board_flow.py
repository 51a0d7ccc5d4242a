"""The board in a real browser against a real daemon and real containers: create, watch, review, approve."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kilod_testing import git, make_repo
from tests.web.conftest import WebDaemon

pytestmark = pytest.mark.docker


def script_errors(page: Any) -> list[str]:
    """Uncaught exceptions and console errors, except the browser's own notes on 4xx answers."""
    return [e for e in page.console_errors if "Failed to load resource" not in e]


def shoot(page: Any, path: Path, scheme: str, full_page: bool = True) -> Path:
    page.emulate_media(color_scheme=scheme)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def in_column(page: Any, column: str, card_id: str) -> Any:
    return page.locator(f'[data-column="{column}"] [data-card-id="{card_id}"]')


def test_create_watch_review_approve(web_daemon_factory: Any, page: Any, tmp_path: Path, shots: Path) -> None:
    # one slot: a card created while another runs waits in To Do long enough to be seen there
    web: WebDaemon = web_daemon_factory({"KILOD_MAX_PARALLEL": "1"})
    daemon = web.daemon
    repo = make_repo(tmp_path / "repo")

    page.goto(web.login_url())
    expect(page).to_have_url(f"{web.origin}/")
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator(".board .card")).to_have_count(0)
    for title in ("To Do", "Doing", "Review", "Done"):
        expect(page.locator(".column h2", has_text=title)).to_be_visible()

    # the form shows the daemon's 400 message and creates nothing
    page.keyboard.press("n")
    expect(page.locator("dialog.new-card")).to_be_visible()
    page.fill("#nc-prompt", "Say hello")
    page.fill("#nc-repo", str(tmp_path / "not-a-repo"))
    page.locator("input[name=model]").first.fill("scripted/hello")
    page.locator("#nc-repo").press("Enter")  # Enter submits the form
    expect(page.locator("dialog.new-card .form-error")).to_contain_text("not-a-repo")
    assert daemon.request("GET", "/v1/cards")["cards"] == []

    blocker = daemon.request("POST", "/v1/cards", {
        "prompt": "hold the only slot", "title": "Blocker", "repo": str(repo), "models": ["scripted/steady"]})

    page.fill("#nc-repo", str(repo))
    page.fill("#nc-title", "Greet the reader")
    page.get_by_role("button", name="Add model").click()
    page.locator("input[name=model]").nth(1).fill("scripted/steady")
    page.get_by_role("button", name="Create card").click()
    expect(page.locator("dialog.new-card")).to_be_hidden()

    cards = [c for c in daemon.request("GET", "/v1/cards")["cards"] if c["id"] != blocker["id"]]
    assert len(cards) == 1
    card = cards[0]
    assert [a["model"] for a in card["attempts"]] == ["scripted/hello", "scripted/steady"]
    hello, steady = (a["id"] for a in card["attempts"])

    # the card moves across the board without a reload
    expect(in_column(page, "todo", card["id"])).to_be_visible()
    shoot(page, shots / "board-todo-light.png", "light", full_page=False)
    expect(in_column(page, "doing", card["id"])).to_be_visible(timeout=60_000)
    expect(in_column(page, "review", card["id"])).to_be_visible(timeout=60_000)
    chips = in_column(page, "review", card["id"]).locator(".chip")
    expect(in_column(page, "review", card["id"]).locator('.chip[data-state="review"]')).to_have_count(
        2, timeout=60_000)
    expect(chips.first).to_contain_text("steps")
    expect(chips.first).to_contain_text("cost unknown")
    shoot(page, shots / "board-light.png", "light", full_page=False)
    shoot(page, shots / "board-dark.png", "dark", full_page=False)
    page.emulate_media(color_scheme="light")

    # the card page: prompt, the log with its tool calls, the highlighted diff
    in_column(page, "review", card["id"]).click()
    expect(page).to_have_url(re.compile(f"#/cards/{card['id']}"))
    expect(page.locator(".prompt-text")).to_have_text("Say hello")
    expect(page.locator(f'.attempt-tab[data-attempt-id="{hello}"]')).to_have_attribute("aria-selected", "true")
    # an attempt in review opens on its diff; the log is one tab away
    expect(page.get_by_role("tab", name="Diff")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="Log").click()
    tool_calls = page.locator(".log-entry.kind-tool_call")
    expect(tool_calls.filter(has_text="write_file")).to_have_count(1)
    expect(tool_calls.filter(has_text="git status --short")).to_have_count(1)
    expect(page.locator(".log-entry.kind-tool_result").first).to_be_visible()
    expect(page.locator(".compare-table").first).to_contain_text("scripted/steady")
    shoot(page, shots / "card-light.png", "light")
    shoot(page, shots / "card-dark.png", "dark")
    page.emulate_media(color_scheme="light")

    page.get_by_role("tab", name="Diff").click()
    expect(page.locator('.file-link[data-path="HELLO.md"]')).to_be_visible()
    hello_file = page.locator('.diff-file[data-path="HELLO.md"]')
    expect(hello_file.locator("tr.line.add")).to_have_count(3)
    # highlighted on the server: Pygments' class for a Markdown heading
    expect(hello_file.locator("td.code span.gh")).to_have_text("# Hello from kilod")
    shoot(page, shots / "diff-light.png", "light")
    shoot(page, shots / "diff-dark.png", "dark")
    page.emulate_media(color_scheme="light")

    # approve one attempt: the page asks first, since the sibling is discarded
    page.get_by_role("button", name="Approve", exact=True).click()
    confirm = page.locator("dialog.confirm")
    expect(confirm).to_contain_text("scripted/steady")
    confirm.get_by_role("button", name="Approve").click()
    expect(page.locator(".action-status")).to_contain_text("Committed", timeout=60_000)
    expect(page.locator(".card-head .column-badge")).to_have_text("Done")

    page.get_by_role("link", name="← Board").click()
    expect(in_column(page, "done", card["id"])).to_be_visible()
    expect(in_column(page, "done", card["id"]).locator(f'[data-attempt-id="{steady}"]')).to_have_attribute(
        "data-state", "discarded")

    approved = daemon.attempt(hello)
    assert approved["state"] == "approved"
    assert git(repo, "rev-parse", f"refs/heads/kilod/{hello}").strip() == approved["landed_commit"]
    assert git(repo, "show", f"kilod/{hello}:HELLO.md").startswith("# Hello from kilod")
    assert git(repo, "log", "-1", "--format=%s", f"kilod/{hello}").strip() == "Greet the reader"
    assert script_errors(page) == []
