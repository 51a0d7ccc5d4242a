"""Prompt caching: mark a stable prefix where the provider needs marks, measure what could be cached.

Anthropic (and Claude on Bedrock / Vertex) caches only up to explicit `cache_control`
breakpoints: the system prompt (which also covers the tool list before it) and the
last two user/tool messages are marked, as SWE-agent and Claude Code do, so each call
reads the previous call's prefix from the cache and writes its own. OpenAI and most
others cache a repeated prefix on their own: there the work is keeping the prefix
stable, which the context view does (it only grows at its end between compactions).
"""

from __future__ import annotations

import json
from typing import Any

EPHEMERAL = {"type": "ephemeral"}
MARKED_TAIL = 2   # Anthropic allows four breakpoints: the system prompt plus the last two turns


def needs_cache_marks(model: str) -> bool:
    provider, _, name = model.partition("/")
    name = name.lower()
    return provider == "anthropic" or (provider in ("bedrock", "vertex_ai", "openrouter") and "claude" in name)


def _marked(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, str):
        blocks: list[dict[str, Any]] = [{"type": "text", "text": content}]
    elif isinstance(content, list) and content:
        blocks = [dict(b) for b in content]
    else:
        return message
    blocks[-1] = {**blocks[-1], "cache_control": EPHEMERAL}
    return {**message, "content": blocks}


def with_cache_marks(model: str, view: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The view with cache breakpoints where the model's provider needs them (a copy; the view is not changed)."""
    if not needs_cache_marks(model):
        return view
    out = list(view)
    if out and out[0].get("role") == "system":
        out[0] = _marked(out[0])
    tail = [i for i in range(len(out) - 1, 0, -1) if out[i].get("role") in ("user", "tool")][:MARKED_TAIL]
    for index in tail:
        out[index] = _marked(out[index])
    return out


class PrefixMeter:
    """How much of each request repeats the previous one from its start: the part a prompt cache can serve."""

    def __init__(self) -> None:
        self._previous: list[str] = []

    def cacheable_share(self, view: list[dict[str, Any]]) -> float:
        encoded = [json.dumps(m, sort_keys=True) for m in view]
        shared = 0
        for mine, theirs in zip(encoded, self._previous, strict=False):
            if mine != theirs:
                break
            shared += len(mine)
        total = sum(len(m) for m in encoded)
        self._previous = encoded
        return shared / total if total else 0.0
