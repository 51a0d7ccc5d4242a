"""The model's first call of a fresh attempt, made while its container starts.

Docker takes ~200 ms to start a container, a real model seconds to answer, and a fresh
attempt's first request (the system prompt and the task, nothing else) needs nothing
from the container. So it is sent when the container step begins, and the agent loop
takes the reply only for the very request it would have sent (`answer`); for another
request it asks as usual. The early call is tried once: should it fail, the loop's
retries start from that failure (a Retry-After honoured, the wait shown on the attempt).

A reply nobody takes (the container did not start) was still paid for: it is counted
in the model metrics, not in an attempt's tokens or cost.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kilod.agent.models import Completion, ModelError, Models


@dataclass
class EarlyCall:
    request: list[dict[str, Any]]   # the messages sent, exactly
    task: asyncio.Task[Completion]

    @classmethod
    def start(cls, models: Models, model: str, request: list[dict[str, Any]],
              tools: list[dict[str, Any]]) -> EarlyCall:
        task = asyncio.create_task(models.complete(model, request, tools, retry=False), name="early-model-call")
        return cls(request, task)

    async def answer(self, request: list[dict[str, Any]]) -> Completion | ModelError | None:
        """The reply if `request` is the one sent early; the error if that try failed (the loop's retries
        start from it, so a Retry-After is honoured and the wait shown); None if it sent another request."""
        if request != self.request:
            await self.drop()
            return None
        try:
            return await self.task
        except ModelError as error:
            return error

    async def drop(self) -> None:
        """Nobody will take the reply: stop the call and wait until it has stopped (or read how it ended)."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
