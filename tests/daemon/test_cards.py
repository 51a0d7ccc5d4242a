"""Cards.create_card, and the board read back, with a real repository, store and scripted models."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kilod.agent.models import Models
from kilod.board import Board
from kilod.cards import Cards, NewCard, default_title
from kilod.config import Settings
from kilod.domain import Event, State, Step
from kilod.errors import Conflict, Invalid, KilodError
from kilod.events import EventLog
from kilod.git.paths import inspect_repo
from kilod.git.repository import Repositories
from kilod.git.worktree import add_worktree
from kilod.lifecycle import Lifecycle
from kilod.review.queries import Queries
from kilod.store import Store
from tests.kilod_testing import git


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KILOD_CONFIG", str(tmp_path / "no-config.toml"))
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "local.json").write_text(json.dumps({"steps": [{"tools": [{"name": "finish"}]}]}))
    return Settings(data_dir=tmp_path / "data", scripts_dir=scripts, network=False)


@pytest.fixture
def board_store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.db_path)
    yield store
    store.close()


@pytest.fixture
def cards(settings: Settings, board_store: Store) -> Cards:
    return Cards(settings, board_store, EventLog(board_store), Models(settings.scripts_dir, timeout=30),
                 Repositories())


@pytest.fixture
def board(board_store: Store) -> Board:
    return Board(board_store)


def branches(repo: Path) -> set[str]:
    return set(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split())


def request(repo_path: Path, /, **fields: Any) -> NewCard:
    return NewCard(**{"prompt": "Add a greeting\nwith details", "repo": str(repo_path), **fields})


async def test_create_card_makes_queued_attempts(cards: Cards, board: Board, board_store: Store, settings: Settings,
                                                 repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    follower = cards.events.follow(None)
    card = await cards.create_card(request(repo, models=["scripted/hello", "scripted/local"]))

    card_id = card["id"]
    assert card["title"] == "Add a greeting"
    assert card["repo"] == str(repo.resolve())
    assert card["base_ref"] == "HEAD"
    assert card["base_commit"] == head
    assert card["base_branch"] == "main"  # HEAD of the main checkout names a branch
    assert card["column"] == "todo"
    assert card["network"] is False
    attempts = card["attempts"]
    assert [a["id"] for a in attempts] == [f"{card_id}-1", f"{card_id}-2"]
    assert [a["n"] for a in attempts] == [1, 2]
    assert [a["model"] for a in attempts] == ["scripted/hello", "scripted/local"]
    assert [a["branch"] for a in attempts] == [f"kilod/{card_id}-1", f"kilod/{card_id}-2"]
    assert [a["worktree"] for a in attempts] == [
        str(settings.data_dir / "worktrees" / f"{card_id}-{n}") for n in (1, 2)]
    assert [a["container"] for a in attempts] == [f"kilod-{card_id}-{n}" for n in (1, 2)]
    assert {a["state"] for a in attempts} == {"queued"}

    stored = board_store.attempts_of(card_id)
    assert [a.to_json() for a in stored] == [{k: v for k, v in a.items() if k != "checks"} for a in attempts]
    assert all(a["checks"] == {"passed": 0, "failed": 0, "error": 0, "total": 0, "failing": False}
               for a in attempts)
    assert {(a.state, a.step) for a in stored} == {(State.QUEUED, Step.WORKTREE)}
    assert board_store.get_card(card_id).base_commit == head
    assert board.card(card_id) == card

    # the first state events were stored and published
    async with asyncio.timeout(10):
        seen: list[Event] = [await anext(follower), await anext(follower)]
    assert [(e.attempt_id, e.payload["to"]) for e in seen] == [(f"{card_id}-1", "queued"),
                                                               (f"{card_id}-2", "queued")]
    cards.events.close()

    # creating a card writes no git state: worktrees and branches come later, in the pipeline
    assert branches(repo) == {"main"}
    assert not (settings.data_dir / "worktrees").exists()


async def test_one_model_by_default_and_named_bases(cards: Cards, repo: Path, settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "-a", "v1", "-m", "v1")
    (repo / "more.txt").write_text("more\n")
    git(repo, "add", "more.txt")
    git(repo, "commit", "-q", "-m", "more")
    cards.settings = settings.model_copy(update={"default_model": "scripted/hello", "network": True})

    card = await cards.create_card(request(repo, base="v1", title="  Explicit  "))

    assert card["base_ref"] == "v1"
    assert card["base_commit"] == first
    assert card["base_branch"] is None  # a tag is no branch to merge into
    assert card["title"] == "Explicit"
    assert card["network"] is True
    assert [a["model"] for a in card["attempts"]] == ["scripted/hello"]


async def test_cards_get_distinct_ids_and_appear_on_the_board(cards: Cards, board: Board, repo: Path) -> None:
    one = await cards.create_card(request(repo, models=["scripted/hello"]))
    two = await cards.create_card(request(repo, models=["scripted/hello"]))
    assert one["id"] != two["id"]
    todo = next(c for c in board.board()["columns"] if c["id"] == "todo")
    assert {c["id"] for c in todo["cards"]} == {one["id"], two["id"]}
    assert [c["id"] for c in board.cards()] == [one["id"], two["id"]]


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"repo": "relative/path"}, Invalid, "absolute path"),
        ({"repo": "/definitely/not/here"}, Invalid, "does not exist"),
        ({"base": "no-such-branch"}, Invalid, "unknown base ref"),
        ({"base": "--all"}, Invalid, "unknown base ref"),
        ({"models": ["scripted/no-such-script"]}, Invalid, "no script named"),
        ({"models": ["scripted/hello", "scripted/../hello"]}, Invalid, "bad script name"),
        ({"models": ["scripted/hello", "scripted/two words"]}, Invalid, "bad script name"),
        ({"models": ["scripted/hello", "scripted/" + "x" * 200]}, Invalid, "bad model name"),
    ],
)
async def test_invalid_requests_create_nothing(cards: Cards, board_store: Store, repo: Path,
                                               fields: dict[str, Any], error: type[KilodError],
                                               message: str) -> None:
    with pytest.raises(error, match=message):
        await cards.create_card(request(repo, **{"models": ["scripted/hello"], **fields}))
    assert board_store.list_cards() == []
    assert board_store.all_attempts() == []
    assert board_store.events_after(0) == []
    assert branches(repo) == {"main"}


async def test_a_file_or_subfolder_is_not_a_repo(cards: Cards, board_store: Store, repo: Path) -> None:
    (repo / "src").mkdir()
    for path in (repo / "greeter.py", repo / "src"):
        with pytest.raises(Invalid):
            await cards.create_card(request(repo, repo=str(path), models=["scripted/hello"]))
    assert board_store.list_cards() == []


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt": ""},
        {"prompt": "   "},
        {"models": []},
        {"models": ["scripted/hello"] * 17},
        {"surprise": 1},
        {"title": "x" * 201},
        {"base": ""},
    ],
)
def test_new_card_rejects_bad_fields(repo: Path, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        request(repo, **fields)


def test_default_title() -> None:
    assert default_title("  Fix the bug\nin detail\n") == "Fix the bug"
    long = "word " * 30
    title = default_title(long)
    assert len(title) == 72
    assert title.endswith("…")
    assert default_title("x" * 72) == "x" * 72


async def test_diffstat_of_an_attempt(cards: Cards, board_store: Store, repo: Path) -> None:
    queries = Queries(Lifecycle(board_store, cards.events), cards.repositories)
    card = await cards.create_card(request(repo, models=["scripted/hello"]))
    attempt = card["attempts"][0]
    with pytest.raises(Conflict, match="no worktree"):
        await queries.diffstat(attempt["id"])

    worktree = Path(attempt["worktree"])
    add_worktree(inspect_repo(str(repo)), worktree, attempt["branch"], card["base_commit"])
    (worktree / "greeter.py").write_text("def greet(name):\n    return 'Hi ' + name\n")
    (worktree / "NEW.md").write_text("a\nb\nc\n")

    stat = await queries.diffstat(attempt["id"])
    assert stat["base_commit"] == card["base_commit"]
    assert sorted((f["path"], f["added"], f["deleted"], f["binary"]) for f in stat["files"]) == [
        ("NEW.md", 3, 0, False), ("greeter.py", 1, 1, False)]
    assert (stat["added"], stat["deleted"]) == (4, 1)


# -- the git questions run together; their errors keep their order ------------------------------------------

CARD_ID = "c0ffee01"


@pytest.fixture
def known_id(monkeypatch: pytest.MonkeyPatch) -> str:
    """The next card's id, so a test can take its attempts' branches first."""
    monkeypatch.setattr("kilod.cards.new_card_id", lambda: CARD_ID)
    return CARD_ID


async def test_a_taken_branch_is_a_conflict_and_creates_nothing(cards: Cards, board_store: Store, repo: Path,
                                                                 known_id: str) -> None:
    git(repo, "branch", f"kilod/{known_id}-2")
    with pytest.raises(Conflict, match=f"branch kilod/{known_id}-2 already exists"):
        await cards.create_card(request(repo, models=["scripted/hello", "scripted/local"]))
    assert board_store.list_cards() == []
    assert branches(repo) == {"main", f"kilod/{known_id}-2"}


async def test_a_branch_folder_in_the_way_is_a_conflict(cards: Cards, repo: Path, known_id: str) -> None:
    git(repo, "branch", f"kilod/{known_id}-1/x")
    with pytest.raises(Conflict, match="already exists"):
        await cards.create_card(request(repo, models=["scripted/hello"]))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"base": "no-such-branch", "models": ["scripted/no-such-script"]}, "unknown base ref"),
        ({"base": "no-such-branch", "models": ["scripted/hello"] * 3, "repeat": 8}, "unknown base ref"),
        ({"base": "no-such-branch"}, "unknown base ref"),
        ({"models": ["scripted/hello"] * 3, "repeat": 8}, "24 attempts on one card"),
        ({"agents": ["no-such-agent"]}, "unknown agent"),
        ({"settings": {"no_such_setting": 1}}, "no_such_setting"),
        ({"models": ["scripted/no-such-script"]}, "no script named"),
    ],
)
async def test_the_request_is_judged_before_a_taken_branch(cards: Cards, board_store: Store, repo: Path,
                                                          known_id: str, fields: dict[str, Any],
                                                          message: str) -> None:
    """git answers all three questions at once; the errors still come in the order the checks always had."""
    git(repo, "branch", f"kilod/{known_id}-1")
    with pytest.raises(Invalid, match=message):
        await cards.create_card(request(repo, **{"models": ["scripted/hello"], **fields}))
    assert board_store.list_cards() == []


async def test_a_failed_card_leaves_no_question_running_or_unread(cards: Cards, repo: Path, known_id: str) -> None:
    """An unknown base fails first; the branch check failing too is still waited for and read."""
    git(repo, "branch", f"kilod/{known_id}-1")
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        try:
            await cards.create_card(request(repo, base="no-such-branch", models=["scripted/hello"]))
        except Invalid:
            pass
        else:
            pytest.fail("created a card on an unknown base")
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        gc.collect()  # an unread task's error is reported when the task is collected
        assert reported == []
    finally:
        loop.set_exception_handler(None)
