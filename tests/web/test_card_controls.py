"""The card page's controls beyond review: pause/resume of the built-in agent, and the trust prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.kilod_testing import make_repo
from tests.web.conftest import WebDaemon

pytestmark = pytest.mark.docker


def tool_calls(web: WebDaemon, attempt_id: str) -> int:
    return sum(1 for e in web.daemon.events(attempt_id) if e["kind"] == "tool_call")


def test_pause_then_resume_a_builtin_attempt_from_the_card_page(web_daemon_factory: Any, page: Any,
                                                                 tmp_path: Path, shots: Path) -> None:
    web: WebDaemon = web_daemon_factory()
    daemon = web.daemon
    repo = make_repo(tmp_path / "repo")
    card = daemon.request("POST", "/v1/cards", {"prompt": "work slowly", "title": "Pausable", "repo": str(repo),
                                                "models": ["scripted/pausable"]})
    attempt_id = card["attempts"][0]["id"]
    page.goto(web.login_url())
    page.goto(f"{web.origin}/#/cards/{card['id']}/{attempt_id}")
    state = page.locator(".attempt-head .state-badge")
    expect(page.locator(".card-head .facts")).to_be_visible()
    expect(page.locator(".trust-note")).to_have_count(0)  # no settings file: nothing to trust, no prompt
    side = page.locator(".review-side")
    pause = side.get_by_role("button", name="Pause", exact=True)

    # the agent is inside its first (slow) tool call: Pause stops it after that call
    daemon.wait_for(lambda: tool_calls(web, attempt_id) >= 1, what="the first tool call")
    pause.click()
    expect(side.locator(".action-status")).to_contain_text("stops after its current tool call")
    expect(state).to_have_text("paused", timeout=60_000)
    expect(pause).to_have_count(0)
    assert (Path(daemon.attempt(attempt_id)["worktree"]) / "one.txt").read_text() == "one\n"
    assert tool_calls(web, attempt_id) == 1  # it stopped after the call in flight, not later

    page.fill("#resume-text", "keep <b>it</b> short")
    page.screenshot(path=str(shots / "card-paused.png"))
    side.get_by_role("button", name="Resume").click()
    expect(side.locator(".action-status")).to_contain_text("working again")
    expect(state).to_have_text("running")
    told = [e["payload"]["content"] for e in daemon.events(attempt_id)
            if e["kind"] == "message" and e["payload"].get("role") == "user"]
    assert any(t.endswith("Their message: keep <b>it</b> short") for t in told)

    # paused a second time; the page's Resume then races a resume made elsewhere: the 409's message shows
    daemon.wait_for(lambda: tool_calls(web, attempt_id) >= 2, what="the second tool call")
    pause.click()
    expect(state).to_have_text("paused", timeout=60_000)
    page.evaluate("""async (id) => {
        const other = await fetch(`/v1/attempts/${id}/resume`, {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify({text: "from elsewhere"})});
        if (other.status !== 202) throw new Error(`resume answered ${other.status}`);
        [...document.querySelectorAll(".review-side button")].find((b) => b.textContent === "Resume").click();
    }""", attempt_id)
    expect(side.locator(".action-status .error-box")).to_contain_text("only a paused attempt can be resumed")

    finished = daemon.wait_state(attempt_id, "review")
    assert finished["summary"].endswith("Their message: from elsewhere")
    expect(state).to_have_text("review")
    assert page.console_errors == [] or all("Failed to load resource" in e for e in page.console_errors)


SETTINGS = """# an agent could have written this: <img src=x onerror="document.title='owned'">
setup = ["echo preparing > /tmp/prepared"]
"""


def test_trust_prompt_shows_the_files_as_text_and_trusts_on_confirm(web_daemon_factory: Any, page: Any,
                                                                    tmp_path: Path, shots: Path) -> None:
    web: WebDaemon = web_daemon_factory()
    daemon = web.daemon
    repo = make_repo(tmp_path / "repo", {"README.md": "# r\n", ".kilod.toml": SETTINGS})
    card = daemon.request("POST", "/v1/cards", {"prompt": "hello", "title": "Untrusted settings", "repo": str(repo),
                                                "models": ["scripted/hello"]})
    source = card["settings_source"]
    assert source["trusted"] is False and source["note"]
    page.goto(web.login_url())
    page.goto(f"{web.origin}/#/cards/{card['id']}")

    note = page.locator(".card-head .trust-note")
    expect(note).to_contain_text(source["note"])
    note.get_by_role("button", name="Review and trust…").click()
    dialog = page.locator("dialog.trust-review")
    expect(dialog).to_be_visible()
    shown = daemon.request("GET", f"/v1/repos/trust?repo={repo}")
    assert shown["trusted"] is False
    file = dialog.locator('.trust-file[data-path=".kilod.toml"]')
    assert file.locator(".trust-content").text_content() == SETTINGS   # as text: the markup is not parsed
    expect(dialog.locator("img")).to_have_count(0)
    expect(dialog.locator(".trust-sha")).to_have_text(shown["sha256"])
    expect(dialog.locator(".trust-widening")).to_contain_text("setup")
    page.screenshot(path=str(shots / "card-trust-review.png"))

    # Cancel trusts nothing
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert daemon.request("GET", f"/v1/repos/trust?repo={repo}")["trusted"] is False

    note.get_by_role("button", name="Review and trust…").click()
    page.locator("dialog.trust-review").get_by_role("button", name="Trust these settings").click()
    expect(page.locator("dialog.trust-review")).to_have_count(0)
    expect(note).to_contain_text("New cards of this repository will use these settings")
    after = daemon.request("GET", f"/v1/repos/trust?repo={repo}")
    assert after["trusted"] is True and after["sha256"] == shown["sha256"]
    assert page.title() != "owned"
    assert all("Failed to load resource" in e for e in page.console_errors)
