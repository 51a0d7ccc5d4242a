"""Pause, fix by hand, pick up: the agent stops after its current tool call and later continues.

A pause request is a mark on the attempt in the store (`Store.request_pause`), so one made
just before the daemon dies is honoured by the next; the loop reads it between steps (after
each tool result, before each model call), so a call in flight always completes and is
stored. The agent step clears it with the move it stores next (to `paused`, or on to the
checks when the agent finished first). Resuming is a follow-up: a message telling the agent
it was paused, what the person changed in the worktree meanwhile (a diff) and what they said.
"""

from __future__ import annotations

RESUME_DIFF_LIMIT = 8_000


def compose_resume(text: str | None, human_diff: str) -> str:
    """The message that resumes a paused agent."""
    parts = ["A person paused you to work in the sandbox by hand; you are resumed now."]
    if human_diff:
        diff = human_diff if len(human_diff) <= RESUME_DIFF_LIMIT else (
            human_diff[:RESUME_DIFF_LIMIT] + f"\n[… {len(human_diff) - RESUME_DIFF_LIMIT} characters cut …]")
        parts.append("They changed the worktree meanwhile (diff against where you stopped); build on it, "
                     f"do not undo it:\n```diff\n{diff}\n```")
    else:
        parts.append("They did not change any files.")
    if text and text.strip():
        parts.append(f"Their message: {text.strip()}")
    return "\n\n".join(parts)
