"""The three wire formats agents speak: their error shapes and where each reports usage.

Anthropic Messages (Claude Code), OpenAI Chat Completions (aider, mini-swe-agent) and
OpenAI Responses (Codex). Pure functions over JSON-shaped dicts: no aiohttp, no litellm.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Wire(StrEnum):
    ANTHROPIC = "anthropic"     # POST /v1/messages
    CHAT = "chat"               # POST /v1/chat/completions
    RESPONSES = "responses"     # POST /v1/responses


@dataclass(frozen=True)
class Usage:
    """One model call's tokens. `tokens_in` counts every prompt token, cached ones included
    (as the built-in agent's `prompt_tokens` does); `cache_read`/`cache_write` say how many of them
    the provider reported as read from / written to its prompt cache."""

    tokens_in: int = 0
    tokens_out: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def reported(self) -> bool:
        return bool(self.tokens_in or self.tokens_out)


# Anthropic names its error types; OpenAI's shape carries a type and a code
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    503: "overloaded_error", 529: "overloaded_error"}
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                 404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_exceeded"}


def error_type(wire: Wire, status: int) -> str:
    table = _ANTHROPIC_TYPES if wire == Wire.ANTHROPIC else _OPENAI_TYPES
    return table.get(status, "api_error" if wire == Wire.ANTHROPIC else "server_error")


def error_body(wire: Wire, status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """The JSON body of an error answer, in the shape the agent's SDK parses."""
    if wire == Wire.ANTHROPIC:
        return {"type": "error", "error": {"type": error_type(wire, status), "message": message}}
    return {"error": {"message": message, "type": error_type(wire, status), "param": None, "code": code}}


def error_event(wire: Wire, status: int, message: str, code: str | None = None) -> bytes:
    """An error inside a stream that already started (its status line is long sent)."""
    if wire == Wire.ANTHROPIC:
        return sse(error_body(wire, status, message), "error")
    if wire == Wire.RESPONSES:
        return sse({"type": "error", "code": code or error_type(wire, status), "message": message,
                    "param": None}, "error")
    return sse(error_body(wire, status, message, code))


def sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def usage_of(wire: Wire, body: dict[str, Any]) -> Usage:
    """Usage from a whole (non-streamed) response body."""
    if wire == Wire.ANTHROPIC:
        return anthropic_usage(body.get("usage"))
    if wire == Wire.RESPONSES:
        return responses_usage(body.get("usage"))
    return chat_usage(body.get("usage"))


def anthropic_usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    read, write = _int(usage.get("cache_read_input_tokens")), _int(usage.get("cache_creation_input_tokens"))
    # Anthropic's input_tokens excludes cached tokens: add them back so tokens_in means the same everywhere
    return Usage(_int(usage.get("input_tokens")) + read + write, _int(usage.get("output_tokens")), read, write)


def chat_usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("prompt_tokens_details") or {}
    read = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    write = _int(usage.get("cache_creation_input_tokens"))
    return Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), read, write)


def responses_usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("input_tokens_details") or {}
    read = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(_int(usage.get("input_tokens")), _int(usage.get("output_tokens")), read)


class StreamUsage:
    """Reads usage out of a stream's events as they pass; the last report of each field wins.

    Anthropic reports input (and cache) tokens in `message_start` and the running output count in
    `message_delta`; Chat puts usage in its last chunk; Responses in `response.completed`.
    """

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self._fields: dict[str, int] = {}
        self._buffer = b""

    def feed_bytes(self, data: bytes) -> None:
        """Raw SSE bytes, split anywhere: complete `data:` lines are parsed."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                payload = line[5:].strip()
                if payload.startswith(b"{"):
                    with contextlib.suppress(ValueError):
                        self.feed(json.loads(payload))

    def feed(self, event: dict[str, Any]) -> None:
        keys: tuple[str, ...]
        if self.wire == Wire.ANTHROPIC:
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, dict) else event.get("usage")
            keys = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
        elif self.wire == Wire.RESPONSES:
            response = event.get("response")
            usage = response.get("usage") if isinstance(response, dict) else None
            keys = ("input_tokens", "output_tokens")
            if isinstance(usage, dict) and isinstance(usage.get("input_tokens_details"), dict):
                self._take({"cached_tokens": usage["input_tokens_details"].get("cached_tokens")}, ("cached_tokens",))
        else:
            usage = event.get("usage")
            keys = ("prompt_tokens", "completion_tokens", "cache_creation_input_tokens")
            if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens_details"), dict):
                self._take({"cached_tokens": usage["prompt_tokens_details"].get("cached_tokens")}, ("cached_tokens",))
        if isinstance(usage, dict):
            self._take(usage, keys)

    def _take(self, usage: dict[str, Any], keys: tuple[str, ...]) -> None:
        for key in keys:
            value = _int(usage.get(key))
            if value:
                self._fields[key] = value

    def usage(self) -> Usage:
        f = self._fields
        if self.wire == Wire.ANTHROPIC:
            return anthropic_usage(f)
        if self.wire == Wire.RESPONSES:
            return Usage(f.get("input_tokens", 0), f.get("output_tokens", 0), f.get("cached_tokens", 0))
        return Usage(f.get("prompt_tokens", 0), f.get("completion_tokens", 0), f.get("cached_tokens", 0),
                     f.get("cache_creation_input_tokens", 0))


def anthropic_stream_of(message: dict[str, Any]) -> list[bytes]:
    """A whole Anthropic message as the event stream that would have carried it.

    Used where litellm cannot stream a provider's native Messages API in this install (its
    streaming module needs litellm's proxy extras): the agent still gets the stream it asked for.
    """
    usage = message.get("usage") or {}
    head = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {**usage, "output_tokens": 0}}
    events = [sse({"type": "message_start", "message": head}, "message_start")]
    for index, block in enumerate(message.get("content") or []):
        kind = block.get("type")
        start: dict[str, Any]
        delta: dict[str, Any] | None
        if kind == "text":
            start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block.get("text", "")}
        elif kind in ("tool_use", "server_tool_use"):
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block.get("input") or {})}
        elif kind == "thinking":
            start, delta = {"type": "thinking", "thinking": ""}, {"type": "thinking_delta",
                                                                  "thinking": block.get("thinking", "")}
        else:  # redacted thinking and anything newer: whole, in its start event
            start, delta = block, None
        events.append(sse({"type": "content_block_start", "index": index, "content_block": start},
                          "content_block_start"))
        if delta is not None:
            events.append(sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"))
        if kind == "thinking" and block.get("signature"):
            events.append(sse({"type": "content_block_delta", "index": index,
                               "delta": {"type": "signature_delta", "signature": block["signature"]}},
                              "content_block_delta"))
        events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    events.append(sse({"type": "message_delta", "delta": {"stop_reason": message.get("stop_reason"),
                                                          "stop_sequence": message.get("stop_sequence")},
                       "usage": usage}, "message_delta"))
    events.append(sse({"type": "message_stop"}, "message_stop"))
    return events
