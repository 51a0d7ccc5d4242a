"""mini-swe-agent: `mini -t … --yolo --exit-immediately`, through the gateway's OpenAI Chat endpoint.

Like aider it runs litellm inside (an `openai/…` model, OPENAI_API_BASE at the
forwarder). It has no session to resume: a follow-up is a new task whose prompt kilod
composed (comments, what a person changed). Its trajectory goes to the state dir.

Its console prints each message it adds to its conversation under a header line
(`System:`, `User:`, `mini-swe-agent (step N, $C):`, `Tool:`), so the stream is read as
blocks: the assistant's become `message` events, a tool's output `tool_result`, the
prompt it echoes back is left out. A block ends at the next header (or the end).
"""

from __future__ import annotations

import re

from kilod.agents.base import HOME, AgentEvent, Launch, Outcome, Request, base_env, clip
from kilod.agents.catalog import CATALOG
from kilod.domain import EventKind

_HEADER = re.compile(r"^(?:(?P<role>System|User|Tool|Exit|Assistant)|mini-swe-agent \(step (?P<step>\d+), [^)]*\)):$")
_RULE = re.compile(r"^[─━-]{20,}$")


class MiniSweAgent:
    name = "mini-swe-agent"

    def session_for(self, attempt_id: str) -> str | None:
        return None

    def launch(self, request: Request) -> Launch:
        argv = [CATALOG[self.name].executable(), "-t", request.prompt, "--yolo", "--exit-immediately",
                "-m", "openai/kilod", "--cost-limit", "0", "-o", f"{HOME}/trajectory-{request.run}.json"]
        env = {**base_env(request), "OPENAI_API_BASE": request.base_url + "/v1", "OPENAI_API_KEY": request.token,
               "MSWEA_CONFIGURED": "true", "MSWEA_COST_TRACKING": "ignore_errors",
               "MSWEA_GLOBAL_CONFIG_DIR": f"{HOME}/.config/mini-swe-agent", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "COLUMNS": "400"}  # rich wraps at 80 columns without a terminal
        return Launch(argv=argv, env=env)

    def parse(self, line: str, outcome: Outcome) -> list[AgentEvent]:
        text = line.rstrip("\n")
        header = _HEADER.match(text.strip())
        if header is None:
            if not _RULE.match(text.strip()) and len(outcome.block) < 2000:
                outcome.block.append(text)
            return []
        events = self.finish(outcome)
        outcome.block_role = header.group("role") or "Assistant"
        return events

    def finish(self, outcome: Outcome) -> list[AgentEvent]:
        role, body = outcome.block_role, "\n".join(outcome.block).strip()
        outcome.block_role, outcome.block = "", []
        if not body:
            return []
        if not role:  # console lines before the first message: start-up notes
            return [AgentEvent(EventKind.LOG, {"message": clip(body, 2000)})]
        if role == "Assistant":
            outcome.summary = clip(body, 2000)
            outcome.finished = True
            return [AgentEvent(EventKind.MESSAGE, {"role": "assistant", "content": clip(body)})]
        if role in ("Tool", "Exit"):
            call = f"bash-{len(outcome.calls)}"
            outcome.calls[call] = "bash"
            return [AgentEvent(EventKind.TOOL_RESULT, {"id": call, "name": "bash",
                                                       "ok": '"returncode": 0' in body, "output": clip(body)})]
        return []  # System / User: the prompt, which the card already shows
