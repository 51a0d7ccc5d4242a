"""The stored conversation: what it says (pending calls, a finish, the person's last word) and how it is kept sendable.

Stored messages are OpenAI-style dicts. kilod's own notes ride along under `kilod_*`
keys (a repaired call's original problem, a reminder's mark) and are stripped from
what is sent: the stored log stays whole and honest, the request stays valid.
"""

from __future__ import annotations

import json
from typing import Any

FINISH = "finish"
PRIVATE = "kilod_"
ARGUMENT_PREVIEW = 300

REMINDER = (
    "You answered without calling a tool. If the task is done, call `finish` with a short summary of "
    "what you changed and why; if not, carry on with the tools. (This reminder is given once.)"
)


def pending_tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls of the last assistant turn that have no stored result yet."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "assistant":
            answered = {m.get("tool_call_id") for m in messages[index + 1:] if m.get("role") == "tool"}
            calls = messages[index].get("tool_calls") or []
            return [c for c in calls if c["id"] not in answered]
    return []


def finish_summary(messages: list[dict[str, Any]]) -> str | None:
    """The summary if the last assistant turn called `finish` and its result is stored.

    A person's message after it (a follow-up) means the work is not finished.
    """
    if messages and messages[-1].get("role") == "user":
        return None
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                if call["function"]["name"] == FINISH and not pending_tool_calls(messages):
                    try:
                        return str(json.loads(call["function"]["arguments"] or "{}").get("summary", ""))
                    except (ValueError, AttributeError):
                        return ""
            return None
    return None


def last_person_index(messages: list[dict[str, Any]]) -> int:
    """Index of the person's latest message (the task or a follow-up), not counting kilod's reminders."""
    return max((i for i, m in enumerate(messages) if m.get("role") == "user" and not m.get(PRIVATE + "reminder")),
               default=0)


def reminded(messages: list[dict[str, Any]]) -> bool:
    """Whether the model was already reminded to call `finish` since the person last spoke."""
    return any(m.get(PRIVATE + "reminder") for m in messages[last_person_index(messages):])


def prose_summary(messages: list[dict[str, Any]]) -> str:
    """The model's latest non-empty prose since the person last spoke: its answer when it never calls finish."""
    for message in reversed(messages[last_person_index(messages):]):
        if message.get("role") == "assistant" and not message.get("tool_calls") and message.get("content"):
            return str(message["content"])
    return ""


def reminder_message() -> dict[str, Any]:
    return {"role": "user", "content": REMINDER, PRIVATE + "reminder": True}


def repair_tool_calls(message: dict[str, Any]) -> dict[str, Any]:
    """Arguments that are not a JSON object are replaced by `{}`, the problem kept under `kilod_error`.

    Providers re-read the history on every call: litellm's Anthropic path parses each
    call's arguments again and refuses the whole request if one is broken. The model
    is told what was wrong in the call's result (see `call_problem`).
    """
    calls = message.get("tool_calls")
    if not calls:
        return message
    repaired = []
    for call in calls:
        raw = call.get("function", {}).get("arguments")
        problem = _arguments_problem(raw)
        if problem is None:
            repaired.append(call)
            continue
        preview = raw if isinstance(raw, str) else repr(raw)
        if len(preview) > ARGUMENT_PREVIEW:
            preview = preview[:ARGUMENT_PREVIEW] + "…"
        repaired.append({**call, "function": {**call["function"], "arguments": "{}"},
                         PRIVATE + "error": f"{problem}; the call was not run. You sent: {preview}",
                         PRIVATE + "raw_arguments": raw if isinstance(raw, str) else repr(raw)})
    return {**message, "tool_calls": repaired}


def _arguments_problem(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None  # no arguments: the same as {}
    if not isinstance(raw, str):
        return "the arguments were not a JSON string"
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return f"the arguments were not valid JSON ({exc})"
    if not isinstance(value, dict):
        return f"the arguments must be a JSON object, not {type(value).__name__}"
    return None


def call_problem(call: dict[str, Any]) -> str | None:
    """What was wrong with a call's arguments when it was stored, if anything."""
    problem = call.get(PRIVATE + "error")
    return str(problem) if problem else None


def raw_arguments(call: dict[str, Any]) -> str:
    """The arguments as the model sent them (before any repair)."""
    raw = call.get(PRIVATE + "raw_arguments")
    return str(raw) if raw is not None else str(call["function"].get("arguments") or "")


def sendable(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message without kilod's private notes, as a provider accepts it."""
    out = {k: v for k, v in message.items() if not k.startswith(PRIVATE)}
    if out.get("tool_calls"):
        out["tool_calls"] = [{k: v for k, v in c.items() if not k.startswith(PRIVATE)} for c in out["tool_calls"]]
    return out
