"""Pause, fix by hand, pick up: the agent stops after its current tool call and later continues.

A pause request is a flag the loop reads between steps (after each tool result, before
each model call), so a call in flight always completes and is stored. Resuming is a
follow-up: a message telling the agent it was paused, what the person changed in the
worktree meanwhile (a diff) and what they said.
"""

from __future__ import annotations

RESUME_DIFF_LIMIT = 8_000


class PauseRequests:
    """Attempts asked to pause; the daemon holds one, the API sets it, each agent run reads it."""

    def __init__(self) -> None:
        self._asked: set[str] = set()

    def request(self, attempt_id: str) -> None:
        self._asked.add(attempt_id)

    def requested(self, attempt_id: str) -> bool:
        return attempt_id in self._asked

    def clear(self, attempt_id: str) -> None:
        self._asked.discard(attempt_id)


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
