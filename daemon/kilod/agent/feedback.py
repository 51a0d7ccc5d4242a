"""Checks feed back: after `finish`, failing checks go back to the agent for a few fix rounds.

The message is stored in the conversation like a follow-up (marked `kilod_fix_round`), so
after a restart the count of rounds used is read from the conversation itself.
"""

from __future__ import annotations

from typing import Any

from kilod.agent.conversation import PRIVATE

FIX_ROUND = PRIVATE + "fix_round"
TAIL = 3_000   # characters of each failing check's output shown to the agent


def rounds_used(messages: list[dict[str, Any]]) -> int:
    """Fix rounds since the person last spoke (their follow-up gives the agent a fresh allowance)."""
    used = 0
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        if message.get(FIX_ROUND):
            used += 1
        elif not message.get(PRIVATE + "reminder"):
            break
    return used


def fix_round_message(results: list[dict[str, Any]], messages: list[dict[str, Any]], fix_rounds: int,
                      stop_reason: str | None, done: str = "call `finish` again") -> dict[str, Any] | None:
    """The message sending failing checks back to the agent, or None when the attempt should go to Review.

    `done`: how the agent says it is done (the built-in agent's `finish`; an agent CLI ends its turn).

    None when every check passed, when the agent stopped early (budget, step limit, model
    error: another round would not help), or when the rounds allowed are used up.
    """
    failing = [r for r in results if r.get("status") != "passed"]
    if not failing or stop_reason or fix_rounds <= 0:
        return None
    used = rounds_used(messages)
    if used >= fix_rounds:
        return None
    parts = [f"The repository's checks ran after you finished and {len(failing)} of {len(results)} did not pass "
             f"(fix round {used + 1} of {fix_rounds}). Fix the cause, run the failing commands yourself to "
             f"confirm, then {done}."]
    for result in failing:
        tail = str(result.get("output_tail") or "")[-TAIL:]
        how = "timed out" if result.get("timed_out") else f"exit code {result.get('exit_code')}"
        parts.append(f"## {result.get('name')}: {result.get('status')} ({how})\n$ {result.get('command')}\n"
                     f"```\n{tail}\n```")
    return {"role": "user", "content": "\n\n".join(parts), FIX_ROUND: used + 1}
