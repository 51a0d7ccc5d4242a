"""Compare's stars: the best value per column, never a star for a failure."""

from __future__ import annotations

from typing import Any

from kilod.review.queries import best_of


def row(aid: str, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {column: None for column in ("checks_failed", "checks_passed", "steps", "tool_calls",
                                                        "tokens", "cost_usd", "wall_seconds")}
    return {**base, "attempt_id": aid, **values}


def test_the_fewest_failures_wins_only_when_it_is_none() -> None:
    assert best_of([row("a", checks_failed=0), row("b", checks_failed=2)])["checks_failed"] == ["a"]
    # one failure against two is fewer, but still a failure: no star
    assert "checks_failed" not in best_of([row("a", checks_failed=1), row("b", checks_failed=2)])
    assert "checks_failed" not in best_of([row("a", checks_failed=1), row("b", checks_failed=1)])


def test_passing_nothing_is_not_best_and_unknowns_never_win() -> None:
    assert "checks_passed" not in best_of([row("a", checks_passed=0), row("b", checks_passed=0)])
    assert best_of([row("a", checks_passed=3), row("b", checks_passed=1)])["checks_passed"] == ["a"]
    assert best_of([row("a", steps=4, cost_usd=None), row("b", steps=4, cost_usd=0.5),
                    row("c", steps=9, cost_usd=0.7)]) == {"steps": ["a", "b"], "cost_usd": ["b"]}
