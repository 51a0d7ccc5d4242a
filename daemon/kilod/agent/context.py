"""What is sent to the model: a view of the stored conversation that fits its context window.

The stored conversation is never rewritten; each model call gets a view of it:

    [system, task]  +  [summary of turns 2..upto]?  +  messages[upto:]   (old tool outputs masked)

Near the window (`high` share of it) the view is compacted in two stages, cheapest first
(SWE-agent's observation masking, then OpenHands' summarising condenser / Claude Code's
auto-compact):
  1. mask: the oldest tool outputs become a one-line placeholder, as many as it takes to bring
     the view under `low` (the last `keep_outputs` are never masked);
  2. summarise: if that is not enough, the older turns are summarised by the same model and
     replaced by that summary (kept as a `compaction` log event, so a restart reuses it).
Both move only when the view crosses the threshold, so between compactions the view
only grows at its end: the provider's prompt cache keeps matching the prefix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kilod.agent.conversation import sendable

HEAD = 2   # the system prompt and the task: always sent as they are
SUMMARY_MARK = re.compile(r"^\[kilod: (\d+) earlier model turns summarised\]")
SUMMARIZE_SYSTEM = (
    "You summarise a coding agent's work so far so that it can continue without the full history. "
    "Write a concise account of: what the task is, what was done (files read, changed and why, commands run "
    "and their key results), what is known about the code, what failed, and what remains to do. Keep exact "
    "file paths, names and error messages that matter. Do not call tools."
)
TRANSCRIPT_MESSAGE_LIMIT = 2_000   # characters of each message in the text to summarise
# Tokens a tokenizer may add around each message (role, separators) and around the whole request.
PER_MESSAGE_SLACK, PER_REQUEST_SLACK = 16, 256


@dataclass(frozen=True)
class Compaction:
    upto: int       # stored messages [HEAD, upto) are replaced by the summary
    turns: int      # model turns among them (the scripted provider counts turns)
    summary: str


@dataclass(frozen=True)
class ContextPolicy:
    high: float = 0.8          # compact when the view passes this share of the window
    low: float = 0.5           # and bring it under this share (summarising if masking does not): the wide
                               # gap makes compactions rare, so the cached prefix survives many calls
    keep_outputs: int = 2      # the latest tool outputs, never masked
    keep_recent: float = 0.25  # share of the window the turns kept after a summary may take


Counter = Callable[[list[dict[str, Any]]], Awaitable[int]]
Summarizer = Callable[[list[dict[str, Any]]], Awaitable[str]]


def summary_message(compaction: Compaction) -> dict[str, Any]:
    return {"role": "user", "content": f"[kilod: {compaction.turns} earlier model turns summarised]\n"
                                       f"Summary of the work so far:\n{compaction.summary}"}


def masked(message: dict[str, Any]) -> dict[str, Any]:
    content = str(message.get("content") or "")
    lines = content.count("\n") + 1
    return {**message, "content": f"[output of {message.get('name', 'the tool')} omitted to save context: "
                                  f"{lines} lines, {len(content)} characters; run it again if you need it]"}


def transcript(messages: list[dict[str, Any]], max_chars: int) -> str:
    """Messages as plain text for the summariser: no tool-call structure to get wrong, long parts cut to fit."""
    parts = []
    limit = max(200, min(TRANSCRIPT_MESSAGE_LIMIT, max_chars // max(1, len(messages)) - 100))
    for message in messages:
        role = message.get("role")
        content = str(message.get("content") or "")
        if len(content) > limit:
            content = content[:limit] + f"\n[… {len(content) - limit} characters cut …]"
        calls = [f"{c['function']['name']}({c['function']['arguments'][:500]})"
                 for c in message.get("tool_calls") or []]
        line = f"## {role}" + (f" ({message.get('name')})" if role == "tool" else "")
        parts.append("\n".join([line, content, *(f"call: {c}" for c in calls)]).strip())
    return "\n\n".join(parts)


class ContextView:
    """Builds each call's view; remembers where masking and the summary stand."""

    def __init__(self, window: int, count: Counter, summarize: Summarizer,
                 policy: ContextPolicy | None = None, compaction: Compaction | None = None,
                 fixed_bytes: int = 0) -> None:
        self.window = window
        self.fixed_bytes = fixed_bytes   # sent with every view besides its messages (the tool schemas)
        self.count = count
        self.summarize = summarize
        self.policy = policy or ContextPolicy()
        self.compaction = compaction
        self.masked_before = 0   # stored tool outputs before this index are masked

    def build(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        head = [sendable(m) for m in messages[:HEAD]]
        start = HEAD
        if self.compaction is not None and self.compaction.upto <= len(messages):
            head.append(summary_message(self.compaction))
            start = self.compaction.upto
        body = [masked(sendable(m)) if m.get("role") == "tool" and i < self.masked_before else sendable(m)
                for i, m in enumerate(messages[start:], start)]
        return head + body

    async def view(self, messages: list[dict[str, Any]], force: bool = False) -> tuple[list[dict[str, Any]],
                                                                                     list[str]]:
        """The view to send and what was done to make it fit (for the attempt's log)."""
        notes: list[str] = []
        view = self.build(messages)
        limit = int(self.window * self.policy.high)
        if not force and self._surely_fits(view, limit):
            return view, notes
        before = await self.count(view)
        if before <= limit and not force:
            return view, notes
        mask_to = await self._mask_point(messages, before - int(self.window * self.policy.low))
        if mask_to > self.masked_before:
            hidden = sum(1 for m in messages[self.masked_before:mask_to] if m.get("role") == "tool")
            self.masked_before = mask_to
            view = self.build(messages)
            after = await self.count(view)
            notes.append(f"masked {hidden} old tool outputs ({before} → {after} tokens, window {self.window})")
            if after <= int(self.window * self.policy.low) and not force:
                return view, notes
            before = after
        cut = await self._cut_point(messages)
        if cut is not None:
            # what is summarised is what was being sent: the previous summary and masked outputs
            older = self.build(messages[:cut])[HEAD:]
            summary = await self.summarize(older)
            turns = sum(1 for m in messages[HEAD:cut] if m.get("role") == "assistant")
            self.compaction = Compaction(cut, turns, summary)
            view = self.build(messages)
            after = await self.count(view)
            notes.append(f"summarised {turns} earlier model turns ({before} → {after} tokens)")
        return view, notes

    def _surely_fits(self, view: list[dict[str, Any]], limit: int) -> bool:
        """Under `limit` tokens without asking the tokenizer (a thread and ~2 ms a call, most calls).

        A byte-level tokenizer's token is at least one byte of what is sent, so the request's
        bytes (with slack for what the tokenizer adds per message) bound its tokens. Content in
        parts (an image's tokens follow its size, not its bytes) is always counted.
        """
        if any(not isinstance(m.get("content"), str | None) for m in view):
            return False
        sent = len(json.dumps(view, ensure_ascii=False).encode()) + self.fixed_bytes
        return sent + PER_MESSAGE_SLACK * len(view) + PER_REQUEST_SLACK <= limit

    async def _mask_point(self, messages: list[dict[str, Any]], excess: int) -> int:
        """Index before which tool outputs are masked: the oldest ones, until `excess` tokens are saved."""
        outputs = [i for i, m in enumerate(messages) if m.get("role") == "tool" and i >= self.masked_before]
        maskable = outputs[:max(0, len(outputs) - self.policy.keep_outputs)]
        point = self.masked_before
        for index in maskable:
            if excess <= 0:
                break
            whole = sendable(messages[index])
            excess -= await self.count([whole]) - await self.count([masked(whole)])
            point = index + 1
        return point

    async def _cut_point(self, messages: list[dict[str, Any]]) -> int | None:
        """Where the summary ends: an assistant turn's start, leaving recent turns within `keep_recent`."""
        start = self.compaction.upto if self.compaction is not None else HEAD
        budget = int(self.window * self.policy.keep_recent)
        candidates = [i for i in range(start + 1, len(messages)) if messages[i].get("role") == "assistant"]
        if not candidates:
            return None
        # the earliest cut whose kept tail fits (summarise as little as needed); tails shrink as the cut moves on
        low, high = 0, len(candidates) - 1
        while low < high:
            middle = (low + high) // 2
            if await self.count([sendable(m) for m in messages[candidates[middle]:]]) <= budget:
                high = middle
            else:
                low = middle + 1
        return candidates[low]


def compaction_from_event(payload: dict[str, Any]) -> Compaction | None:
    data = payload.get("compaction")
    if not isinstance(data, dict):
        return None
    try:
        return Compaction(int(data["upto"]), int(data["turns"]), str(data["summary"]))
    except (KeyError, TypeError, ValueError):
        return None


def summary_request(older: list[dict[str, Any]], window: int) -> list[dict[str, Any]]:
    """The request for a summary of `older`, sized to about half the window (a token is ~4 characters)."""
    text = transcript(older, max_chars=window * 2)
    if len(text) > window * 2:   # many small messages: keep the latest (the previous summary leads, so cut inside)
        text = "[… earliest part cut …]\n" + text[-window * 2:]
    return [{"role": "system", "content": SUMMARIZE_SYSTEM},
            {"role": "user", "content": "Summarise this work so far:\n\n" + text}]


def turns_before(messages: list[dict[str, Any]]) -> int:
    """Model turns a view stands for: those it holds plus those its summary replaced."""
    turns = sum(1 for m in messages if m.get("role") == "assistant")
    for message in messages:
        if message.get("role") == "user":
            found = SUMMARY_MARK.match(str(message.get("content") or ""))
            if found:
                turns += int(found.group(1))
    return turns
