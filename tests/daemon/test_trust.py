"""Trust in a repository's .kilod.toml: widening keys apply only to content a person trusted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kilod.agent.models import Models
from kilod.cards import Cards, NewCard
from kilod.config import Settings
from kilod.errors import Conflict, Invalid
from kilod.events import EventLog
from kilod.git.repository import Repositories
from kilod.repo_settings import RepoSettings
from kilod.store import Store
from kilod.trust import RepoTrust, read_settings_file, widening_keys
from tests.kilod_testing import make_repo

WIDE = 'network = true\ncopy = [".env"]\nsetup = ["make deps"]\n\n[[checks]]\nname = "t"\nrun = "make test"\n'


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KILOD_CONFIG", str(tmp_path / "no-config.toml"))
    return Settings(data_dir=tmp_path / "data", network=False, default_model="scripted/hello")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = Store(settings.db_path)
    yield opened
    opened.close()


@pytest.fixture
def board(settings: Settings, store: Store) -> Cards:
    return Cards(settings, store, EventLog(store), Models(None, timeout=30), Repositories())


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new(repo: Path, **fields: object) -> NewCard:
    return NewCard.model_validate({"prompt": "do it", "repo": str(repo), **fields})


async def test_an_untrusted_file_applies_only_its_safe_keys_and_says_so(board: Cards, store: Store,
                                                                        tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": WIDE})
    card = await board.create_card(new(repo))
    assert card["network"] is False
    assert card["settings"]["copy"] == [] and card["settings"]["setup"] == []
    assert [c["run"] for c in card["settings"]["checks"]] == ["make test"]  # checks are safe: applied
    source = card["settings_source"]
    assert source["trusted"] is False and source["sha256"] == sha(WIDE)
    assert source["ignored"] == ["setup", "copy", "network"]
    assert "not trusted" in source["note"] and f"kilod ctl trust {repo}" in source["note"]
    notes = [e.payload for e in store.events_of(card["attempts"][0]["id"]) if e.payload.get("step") == "settings"]
    assert notes and notes[0]["message"] == source["note"]


async def test_trusting_the_shown_hash_applies_everything_until_the_file_changes(board: Cards, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": WIDE})
    view = await board.trust.view_of(str(repo))
    assert view["content"] == WIDE and view["trusted"] is False and view["widening"] == ["setup", "copy", "network"]
    trusted = await board.trust.trust_of(str(repo), view["sha256"])
    assert trusted["trusted"] is True
    card = await board.create_card(new(repo))
    assert card["network"] is True and card["settings"]["copy"] == [".env"]
    assert card["settings"]["setup"] == ["make deps"]
    assert card["settings_source"]["trusted"] is True and card["settings_source"]["note"] is None

    # an agent's merged change makes new content: not trusted, whatever was trusted before
    (repo / ".kilod.toml").write_text(WIDE + "# harmless looking\n")
    card = await board.create_card(new(repo))
    assert card["network"] is False and card["settings"]["copy"] == []
    assert card["settings_source"]["trusted"] is False

    # going back to the trusted content is trusted again; revoking forgets it
    (repo / ".kilod.toml").write_text(WIDE)
    assert (await board.create_card(new(repo)))["network"] is True
    await board.trust.revoke_of(str(repo))
    assert (await board.create_card(new(repo)))["network"] is False


async def test_trust_needs_the_hash_of_the_content_shown(board: Cards, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": WIDE})
    with pytest.raises(Invalid) as missing:
        await board.trust.trust_of(str(repo), None)
    assert missing.value.details["content"] == WIDE and missing.value.details["current_sha256"] == sha(WIDE)
    with pytest.raises(Conflict) as stale:
        await board.trust.trust_of(str(repo), sha("network = false\n"))
    assert "changed since it was shown" in stale.value.message
    assert (await board.trust.view_of(str(repo)))["trusted"] is False
    bare = make_repo(tmp_path / "plain")
    with pytest.raises(Conflict):
        await board.trust.trust_of(str(bare), sha(""))


async def test_settings_the_person_typed_apply_without_trust(board: Cards, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": WIDE})
    card = await board.create_card(new(repo, network=True, settings={"copy": [".env"]}))
    assert card["network"] is True and card["settings"]["copy"] == [".env"]
    assert card["settings"]["setup"] == []  # from the untrusted file: still not applied
    assert card["settings_source"]["ignored"] == ["setup"]


@pytest.mark.parametrize(("toml", "expected"), [
    ('setup = ["ok"\ncopy = 3\n', "TOML syntax error"),
    ('setup = []\ncolour = "red"\n', ".kilod.toml:2: colour: unknown key"),
    ('network = "yes"\n', ".kilod.toml:1: network: Value error, expected true, false or a list of host names"),
])
async def test_a_malformed_file_gives_safe_defaults_and_an_error_naming_file_key_and_line(
        board: Cards, tmp_path: Path, toml: str, expected: str) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": toml})
    card = await board.create_card(new(repo))
    source = card["settings_source"]
    assert expected in source["error"] and str(repo / ".kilod.toml") in source["error"]
    assert "safe defaults" in source["note"]
    # every key at its default; the network resolved to the daemon's default (none)
    assert card["settings"] == {**RepoSettings().to_json(), "network": False} and card["network"] is False
    # the person's own settings are still checked strictly: a typo there is a 400
    with pytest.raises(Invalid):
        await board.create_card(new(repo, settings={"network": "yes"}))


def test_the_file_is_read_bounded_and_never_through_a_symlink(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (tmp_path / "elsewhere.toml").write_text("network = true\n")
    (repo / ".kilod.toml").symlink_to(tmp_path / "elsewhere.toml")
    read = read_settings_file(repo)
    assert read.settings is None and "symbolic link" in str(read.error)
    (repo / ".kilod.toml").unlink()
    (repo / ".kilod.toml").write_text("# " + "x" * 300_000 + "\n")
    assert "larger than" in str(read_settings_file(repo).error)


def test_settings_that_narrow_the_sandbox_need_no_trust(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": 'network = false\ncopy = []\n'})
    parsed = read_settings_file(repo).settings
    assert parsed is not None and widening_keys(parsed) == []


def test_trust_survives_a_restart_of_the_store(settings: Settings, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": WIDE})
    store = Store(settings.db_path)
    RepoTrust(store, Repositories()).trust(repo, sha(WIDE))
    store.close()
    store = Store(settings.db_path)
    try:
        view = RepoTrust(store, Repositories()).view(repo)
        assert view["trusted"] is True and json.dumps(view)
        assert [h["sha256"] for h in view["trusted_hashes"]] == [sha(WIDE)]
    finally:
        store.close()
