"""pending_tool_calls and finish_summary: how a stored conversation says where the loop stands."""

from __future__ import annotations

import json
from typing import Any

from kilod.agent.conversation import finish_summary, pending_tool_calls

START: list[dict[str, Any]] = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]


def call(call_id: str, name: str, arguments: dict[str, Any] | str | None = None) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def assistant(*calls: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def result(call_id: str, content: str = "ok") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "name": "x", "content": content}


# -- pending_tool_calls ---------------------------------------------------------


def test_nothing_pending_without_an_assistant_turn() -> None:
    assert pending_tool_calls([]) == []
    assert pending_tool_calls(START) == []


def test_all_calls_of_the_last_turn_are_pending_before_any_result() -> None:
    a, b = call("a", "shell", {"command": "ls"}), call("b", "read_file", {"path": "x"})
    assert pending_tool_calls([*START, assistant(a, b)]) == [a, b]


def test_answered_calls_are_not_pending() -> None:
    a, b, c = call("a", "shell"), call("b", "shell"), call("c", "shell")
    messages = [*START, assistant(a, b, c), result("b")]
    assert pending_tool_calls(messages) == [a, c]
    assert pending_tool_calls([*messages, result("a"), result("c")]) == []


def test_only_the_last_assistant_turn_counts() -> None:
    old, new = call("old", "shell"), call("new", "shell")
    # the earlier turn's call was never answered, but a later turn exists: it is history
    messages = [*START, assistant(old), assistant(new)]
    assert pending_tool_calls(messages) == [new]
    # a result for the same id from an earlier turn does not answer the new call
    reused = call("same", "shell")
    messages = [*START, assistant(call("same", "shell")), result("same"), assistant(reused)]
    assert pending_tool_calls(messages) == [reused]


def test_a_prose_turn_has_nothing_pending() -> None:
    assert pending_tool_calls([*START, assistant(content="all done")]) == []
    assert pending_tool_calls([*START, {"role": "assistant", "content": "x", "tool_calls": None}]) == []


def test_user_messages_after_the_turn_do_not_answer_calls() -> None:
    a = call("a", "shell")
    assert pending_tool_calls([*START, assistant(a), {"role": "user", "content": "and?"}]) == [a]


# -- finish_summary -----------------------------------------------------------------


def test_finish_summary_after_the_result_is_stored() -> None:
    done = call("f", "finish", {"summary": "Added HELLO.md."})
    assert finish_summary([*START, assistant(done)]) is None  # called but not yet answered
    assert finish_summary([*START, assistant(done), result("f")]) == "Added HELLO.md."


def test_finish_summary_none_without_finish() -> None:
    assert finish_summary([]) is None
    assert finish_summary(START) is None
    assert finish_summary([*START, assistant(call("a", "shell")), result("a")]) is None
    assert finish_summary([*START, assistant(content="prose")]) is None


def test_finish_in_an_earlier_turn_does_not_count() -> None:
    messages = [*START, assistant(call("f", "finish", {"summary": "early"})), result("f"),
                assistant(call("s", "shell")), result("s")]
    assert finish_summary(messages) is None


def test_finish_beside_other_calls_waits_for_all_of_them() -> None:
    turn = assistant(call("s", "shell"), call("f", "finish", {"summary": "both"}))
    assert finish_summary([*START, turn, result("f")]) is None
    assert finish_summary([*START, turn, result("f"), result("s")]) == "both"


def test_finish_with_odd_arguments_gives_an_empty_summary() -> None:
    for arguments in ("{bad json", "[1, 2]", ""):
        messages = [*START, assistant(call("f", "finish", arguments)), result("f")]
        assert finish_summary(messages) == "", arguments
    messages = [*START, assistant(call("f", "finish", {})), result("f")]
    assert finish_summary(messages) == ""


def test_a_follow_up_after_finish_means_not_finished() -> None:
    finished = [*START, assistant(call("f", "finish", {"summary": "first pass"})), result("f")]
    assert finish_summary(finished) == "first pass"
    assert finish_summary([*finished, {"role": "user", "content": "also add a test"}]) is None


def test_budget_says_which_limit_was_reached_and_never_guesses_an_unknown_cost() -> None:
    from kilod.agent.loop import Budget

    assert Budget().exceeded(10**9, 10**6) is None
    assert Budget(tokens=500).exceeded(499, None) is None
    assert Budget(tokens=500).exceeded(500, None) == "token budget of 500 reached (500 used)"
    assert Budget(cost_usd=0.01).exceeded(10**9, None) is None  # no known price: cannot be enforced
    assert Budget(cost_usd=0.01).exceeded(0, 0.0099) is None
    assert Budget(cost_usd=0.01).exceeded(0, 0.0125) == "cost budget of $0.01 reached ($0.0125 used)"
    assert Budget(tokens=100, cost_usd=0.01).exceeded(150, 0.02) == "token budget of 100 reached (150 used)"
