"""A local Anthropic Messages API server, so litellm's real anthropic/* path (and its translation) runs.

`reply(body) -> response JSON` plays the model; every request is kept for assertions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fake_openai import LoopbackServer

Reply = Callable[[dict[str, Any]], dict[str, Any]]


def tool_use_response(turn: int, name: str, arguments: dict[str, Any], usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": f"msg_{turn}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "tool_use", "id": f"toolu_{turn}", "name": name, "input": arguments}],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": usage,
    }


class FakeAnthropic(LoopbackServer):
    def __init__(self, reply: Reply) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.reply = reply

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        return web.json_response(self.reply(body))

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)
