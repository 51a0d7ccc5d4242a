"""The board's projection served as text: the same JSON as the dicts, kept between changes, re-read in batches."""

from __future__ import annotations

import json

import pytest

from kilod.board import Board
from kilod.domain import Column, State, checks_summary, now
from kilod.errors import NotFound
from kilod.store import Store
from tests.daemon.records import make_attempts, make_card


def check(name: str, status: str) -> dict[str, object]:
    return {"name": name, "command": "true", "status": status, "exit_code": 0, "duration": 0.1, "output_tail": ""}


def test_the_board_text_is_the_board_and_is_kept_until_something_changes(store: Store) -> None:
    board = Board(store)
    board.load()
    assert json.loads(board.board_json()) == board.board()
    cards = []
    for i in range(4):
        card = make_card(f"feed{i:04d}")
        store.insert_card(card, make_attempts(card, 2))
        cards.append(card)
    text = board.board_json()
    assert json.loads(text) == board.board()
    assert json.loads(board.board_json(per_column=1)) == board.board(per_column=1)
    assert board.board_json() is text  # nothing committed since: the same text, not made again

    store.update_attempt(f"{cards[1].id}-1", state=State.STARTING)
    changed = json.loads(board.board_json())
    assert changed == board.board() and changed != json.loads(text)
    doing = {c["id"]: c for c in changed["columns"]}[str(Column.DOING)]
    assert [c["id"] for c in doing["cards"]] == [cards[1].id]


def test_a_batch_refresh_reads_every_changed_card_with_its_latest_checks(store: Store) -> None:
    board = Board(store)
    board.load()
    first, second = make_card("feed0001"), make_card("feed0002")
    store.insert_card(first, make_attempts(first, 2))
    store.insert_card(second, make_attempts(second))
    board.board_json()
    store.record_check(f"{first.id}-1", 1, 0, check("lint", "failed"))
    store.record_check(f"{first.id}-1", 2, 0, check("lint", "passed"))  # a fix round: only run 2 counts
    store.record_check(f"{first.id}-2", 1, 0, check("test", "error"))
    store.set_archived(second.id, now())
    third = make_card("feed0003")
    store.insert_card(third, make_attempts(third))  # a card the projection has not seen yet, in the same read

    shown = {c["id"]: c for column in json.loads(board.board_json())["columns"] for c in column["cards"]}
    assert set(shown) == {first.id, third.id}  # archived: off the board
    checks = [a["checks"] for a in shown[first.id]["attempts"]]
    assert [(c["passed"], c["failed"], c["error"], c["failing"]) for c in checks] == [
        (1, 0, 0, False), (0, 0, 1, True)]
    assert board.card(second.id)["archived_at"] is not None  # still a card: GET /v1/cards lists it

    store.delete_card(first.id)
    assert [c["id"] for column in json.loads(board.board_json())["columns"] for c in column["cards"]] == [third.id]
    fresh = Board(store)
    fresh.load()
    assert fresh.board_json() == board.board_json()


async def test_a_commit_applies_its_change_so_reading_the_board_asks_sqlite_nothing(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    board = Board(store)
    board.load()
    card = make_card("feed0100")
    store.insert_card(card, make_attempts(card, 1))
    await store.update_attempt_async(f"{card.id}-1", state=State.STARTING)   # the writer thread's group commit

    def no_sqlite(*args: object) -> None:
        raise AssertionError("the board read the store on a board read")

    for read in ("cards_by_id", "attempts_of_cards", "latest_checks", "card_ids_of", "all_attempts", "list_cards"):
        monkeypatch.setattr(store, read, no_sqlite)
    doing = {c["id"]: c for c in json.loads(board.board_json())["columns"]}[str(Column.DOING)]
    assert [c["id"] for c in doing["cards"]] == [card.id]
    assert board.card(card.id)["attempts"][0]["state"] == "starting"
    assert board.attempt(f"{card.id}-1")["state"] == "starting"
    with pytest.raises(NotFound):
        board.attempt(f"{card.id}-9")


def test_an_attempt_from_the_board_is_the_stored_attempt_with_its_latest_checks(store: Store) -> None:
    board = Board(store)
    board.load()
    card = make_card("feed0102")
    store.insert_card(card, make_attempts(card, 2))
    attempt_id = f"{card.id}-2"
    store.update_attempt(attempt_id, state=State.STARTING, summary="s")
    store.record_check(attempt_id, 1, 0, check("old", "failed"))
    store.record_check(attempt_id, 2, 0, check("lint", "passed"))
    store.record_check(attempt_id, 2, 1, check("test", "failed"))
    shown = board.attempt(attempt_id)
    assert shown == {**store.get_attempt(attempt_id).to_json(), "checks": checks_summary(store.checks_of(attempt_id))}
    assert shown["checks"] == {"passed": 1, "failed": 1, "error": 0, "total": 2, "failing": True}


def test_a_change_the_notice_could_not_read_is_read_by_the_next_board_read(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    board = Board(store)
    board.load()
    card = make_card("feed0101")
    store.insert_card(card, make_attempts(card, 1))
    real = store.cards_by_id

    def broken(*args: object) -> None:
        raise RuntimeError("read failed")

    monkeypatch.setattr(store, "cards_by_id", broken)
    store.update_attempt(f"{card.id}-1", state=State.STARTING)   # committed; the notice's read fails (logged)
    assert board._pending == {f"{card.id}-1"}
    monkeypatch.setattr(store, "cards_by_id", real)
    assert board.card(card.id)["attempts"][0]["state"] == "starting"


async def test_a_commit_is_applied_even_while_another_thread_reads_the_store(store: Store) -> None:
    """The notice reads on its own thread's connection: a query under way on another thread's connection
    holds that connection's snapshot, from before the commit, and must not be what the board sees."""
    board = Board(store)
    board.load()
    cards = [make_card(f"feed02{i:02d}") for i in range(3)]
    for card in cards:
        store.insert_card(card, make_attempts(card, 1))
    attempt_id = f"{cards[0].id}-1"
    under_way = store._db.execute("SELECT id FROM attempts")   # this thread's read, one row in
    assert under_way.fetchone() is not None

    await store.update_attempt_async(attempt_id, state=State.STARTING)

    assert store.get_attempt(attempt_id).state == State.QUEUED   # this thread's connection still sees the old row
    assert board.attempt(attempt_id)["state"] == "starting"
    assert board.card(cards[0].id)["column"] == str(Column.DOING)
    under_way.close()
