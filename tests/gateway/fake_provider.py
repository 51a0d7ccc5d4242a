"""A local provider speaking what litellm sends it: Chat Completions, the Responses API and
(for anthropic/… models) Anthropic Messages, each streamed (SSE) and not. It answers with one
text reply naming the model it was asked for, reports usage with cached tokens, can be told to
fail the next calls with a status, and keeps every request it received for assertions. Runs on
its own thread and loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import web

from tests.fake_openai import LoopbackServer

USAGE_IN, USAGE_OUT, USAGE_CACHED = 11, 7, 4


def reply_text(model: str) -> str:
    return f"hello from {model}"


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "").encode() + f"data: {text}\n\n".encode()


class FakeProvider(LoopbackServer):
    def __init__(self, chunk_delay: float = 0.0, pieces: int = 2) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.failures: list[tuple[int, dict[str, Any]]] = []
        self.chunk_delay = chunk_delay
        self.hold: threading.Event | None = None   # when set up: streams pause after their first event
        self.pieces = pieces

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail_next(self, status: int, message: str, times: int = 1, type_: str = "server_error") -> None:
        for _ in range(times):
            self.failures.append((status, {"error": {"message": message, "type": type_, "code": None}}))

    def _pieces(self, model: str) -> list[str]:
        words = reply_text(model).split(" ")
        size = max(1, len(words) // self.pieces)
        return [" ".join(words[i:i + size]) + (" " if i + size < len(words) else "")
                for i in range(0, len(words), size)]

    async def _record(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        body = await request.json()
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body})
        if self.failures:
            status, error = self.failures.pop(0)
            return body, web.json_response(error, status=status)
        return body, None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._record(request)
        if failed is not None:
            return failed
        model = body.get("model", "")
        usage = {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT,
                 "prompt_tokens_details": {"cached_tokens": USAGE_CACHED}}
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            await self._think()
            return web.json_response({**base, "object": "chat.completion", "usage": usage, "choices": [{
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": reply_text(model)}}]})
        response = await self._stream_start(request)
        chunk = {**base, "object": "chat.completion.chunk"}
        for i, piece in enumerate(self._pieces(model)):
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            await self._send(response, _sse({**chunk, "choices": [{"index": 0, "delta": delta,
                                                                    "finish_reason": None}]}))
        await self._send(response, _sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            await self._send(response, _sse({**chunk, "choices": [], "usage": usage}))
        await self._send(response, _sse("[DONE]"))
        await response.write_eof()
        return response

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._record(request)
        if failed is not None:
            return failed
        model = body.get("model", "")
        text = reply_text(model)
        message = {"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": text, "annotations": []}]}
        usage = {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT,
                 "input_tokens_details": {"cached_tokens": USAGE_CACHED},
                 "output_tokens_details": {"reasoning_tokens": 0}}
        done = {"id": "resp_fake", "object": "response", "created_at": int(time.time()), "status": "completed",
                "model": model, "output": [message], "usage": usage, "parallel_tool_calls": True,
                "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None}
        if not body.get("stream"):
            await self._think()
            return web.json_response(done)
        response = await self._stream_start(request)
        seq = iter(range(1000))
        started = {**done, "status": "in_progress", "output": [], "usage": None}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            {"type": "response.in_progress", "response": started},
            {"type": "response.output_item.added", "output_index": 0,
             "item": {**message, "status": "in_progress", "content": []}},
            {"type": "response.content_part.added", "item_id": "msg_fake", "output_index": 0, "content_index": 0,
             "part": {"type": "output_text", "text": "", "annotations": []}},
        ]
        for piece in self._pieces(model):
            events.append({"type": "response.output_text.delta", "item_id": "msg_fake", "output_index": 0,
                           "content_index": 0, "delta": piece})
        events += [
            {"type": "response.output_text.done", "item_id": "msg_fake", "output_index": 0, "content_index": 0,
             "text": text},
            {"type": "response.content_part.done", "item_id": "msg_fake", "output_index": 0, "content_index": 0,
             "part": {"type": "output_text", "text": text, "annotations": []}},
            {"type": "response.output_item.done", "output_index": 0, "item": message},
            {"type": "response.completed", "response": done},
        ]
        for event in events:
            await self._send(response, _sse({**event, "sequence_number": next(seq)}, event["type"]))
        await response.write_eof()
        return response

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._record(request)
        if failed is not None:
            return failed
        model = body.get("model", "")
        usage = {"input_tokens": USAGE_IN - USAGE_CACHED, "output_tokens": USAGE_OUT,
                 "cache_read_input_tokens": USAGE_CACHED, "cache_creation_input_tokens": 0}
        message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": reply_text(model)}], "stop_reason": "end_turn",
                   "stop_sequence": None, "usage": usage}
        if not body.get("stream"):
            await self._think()
            return web.json_response(message)
        response = await self._stream_start(request)
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                  "usage": {**usage, "output_tokens": 1}}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
              for piece in self._pieces(model)),
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": USAGE_OUT}},
            {"type": "message_stop"},
        ]
        for event in events:
            await self._send(response, _sse(event, event["type"]))
        await response.write_eof()
        return response

    async def _stream_start(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        return response

    async def _think(self) -> None:
        """A whole answer takes as long as its stream would have."""
        if self.chunk_delay:
            await asyncio.sleep(self.chunk_delay * (self.pieces + 4))

    async def _send(self, response: web.StreamResponse, data: bytes) -> None:
        if self.chunk_delay:
            await asyncio.sleep(self.chunk_delay)
        await response.write(data)
        hold, self.hold = self.hold, None
        if hold is not None:
            await asyncio.to_thread(hold.wait, 30)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/messages", self.messages)
