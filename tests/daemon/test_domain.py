"""The attempt state machine and the card column, checked against a table written out by hand."""

from __future__ import annotations

import itertools
import json

import pytest

from kilod.domain import (
    FINAL_STATES,
    KEEPS_CONTAINER,
    LIVE_STATES,
    SLOT_STATES,
    Column,
    State,
    attempt_id,
    branch_name,
    check_transition,
    column_of,
    container_name,
    meta,
)
from kilod.errors import Conflict, KilodError

Q, S, R, P, V = State.QUEUED, State.STARTING, State.RUNNING, State.PAUSED, State.REVIEW
A, D, F, C = State.APPROVED, State.DISCARDED, State.FAILED, State.CANCELLED

# Written out by hand, not derived from the code under test:
# queued → starting → running → review → (approved | discarded); any live state → failed | cancelled;
# running ⇄ paused; review → running (follow-up); failed / cancelled → discarded.
ALLOWED: set[tuple[State, State]] = {
    (Q, S), (S, R), (R, V), (V, A), (V, D),
    (Q, F), (Q, C), (S, F), (S, C), (R, F), (R, C),
    (R, P), (P, R), (P, F), (P, C),
    (V, R),
    (F, D), (C, D),
}
ALL_PAIRS = list(itertools.product(State, State))


def test_there_are_nine_states() -> None:
    assert len(State) == 9
    assert {Q, S, R, P} == LIVE_STATES
    assert {A, D, F, C} == FINAL_STATES


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED), ids=lambda s: str(s))
def test_allowed_transition_passes(current: State, target: State) -> None:
    check_transition(current, target)  # raises on a forbidden move


@pytest.mark.parametrize(
    ("current", "target"), [p for p in ALL_PAIRS if p not in ALLOWED], ids=lambda s: str(s)
)
def test_forbidden_transition_raises_conflict(current: State, target: State) -> None:
    with pytest.raises(Conflict) as caught:
        check_transition(current, target)
    assert isinstance(caught.value, KilodError)
    assert f"'{current}'" in caught.value.message
    assert f"'{target}'" in caught.value.message


def test_matrix_is_complete() -> None:
    """Every one of the 81 pairs is either allowed or raises; 18 are allowed."""
    outcomes = {}
    for current, target in ALL_PAIRS:
        try:
            check_transition(current, target)
            outcomes[(current, target)] = True
        except Conflict:
            outcomes[(current, target)] = False
    assert len(outcomes) == 81
    assert {pair for pair, ok in outcomes.items() if ok} == ALLOWED


def test_no_state_moves_to_itself() -> None:
    for state in State:
        with pytest.raises(Conflict):
            check_transition(state, state)


def test_approved_and_discarded_are_terminal() -> None:
    for terminal in (A, D):
        for target in State:
            with pytest.raises(Conflict):
                check_transition(terminal, target)


@pytest.mark.parametrize(
    ("states", "column"),
    [
        ([], Column.TODO),
        ([Q], Column.TODO),
        ([Q, Q, Q], Column.TODO),
        ([S], Column.DOING),
        ([R], Column.DOING),
        ([Q, S], Column.DOING),
        ([R, V, F], Column.DOING),
        ([R, A], Column.DOING),
        ([P], Column.DOING),
        ([P, V], Column.DOING),
        ([V], Column.REVIEW),
        ([V, F], Column.REVIEW),
        ([V, D], Column.REVIEW),
        ([Q, V], Column.REVIEW),
        ([F], Column.CLOSED),             # nothing waits for a person: an outcome, not a review
        ([F, C], Column.CLOSED),
        ([Q, F], Column.TODO),            # a retry waits for a slot
        ([A], Column.DONE),
        ([A, D, D], Column.DONE),
        ([A, Q], Column.TODO),
        ([D], Column.CLOSED),
        ([C], Column.CLOSED),
        ([D, C, D], Column.CLOSED),
        ([F, D], Column.CLOSED),
        ([Q, C], Column.TODO),
    ],
    ids=lambda v: ",".join(map(str, v)) if isinstance(v, list) else str(v),
)
def test_column_of(states: list[State], column: Column) -> None:
    assert column_of(states) == column


def test_names_are_deterministic() -> None:
    assert attempt_id("ab12cd34", 3) == "ab12cd34-3"
    assert branch_name("ab12cd34-3") == "kilod/ab12cd34-3"
    assert container_name("ab12cd34-3") == "kilod-ab12cd34-3"


def test_meta_serves_every_constant_clients_need() -> None:
    served = json.loads(json.dumps(meta()))
    assert served["states"] == ["queued", "starting", "running", "paused", "review", "approved", "discarded",
                                "failed", "cancelled"]
    assert set(served["live_states"]) == {"queued", "starting", "running", "paused"}
    assert set(served["final_states"]) == {"approved", "discarded", "failed", "cancelled"}
    assert served["columns"] == [{"id": "todo", "title": "To Do"}, {"id": "doing", "title": "Doing"},
                                 {"id": "review", "title": "Review"}, {"id": "done", "title": "Done"},
                                 {"id": "closed", "title": "Closed"}]
    assert served["steps"] == ["worktree", "image", "install", "container", "setup", "agent", "checks", "review"]
    assert set(served["event_kinds"]) == {"state", "message", "tool_call", "tool_result", "log", "check", "output"}


def test_a_paused_attempt_holds_no_slot_but_keeps_its_container() -> None:
    assert P not in SLOT_STATES and {S, R} == SLOT_STATES
    assert P in KEEPS_CONTAINER
    assert not (LIVE_STATES & FINAL_STATES)
