"""aider: `aider --message …` in the worktree, through the gateway's OpenAI Chat endpoint.

aider runs litellm inside; an `openai/…` model with OPENAI_API_BASE pointed at the
forwarder sends every call to the gateway (which pins the attempt's real model). kilod
owns git (nothing is committed before a person approves), so aider leaves git alone (`--no-git`).
Its chat history lives in the state dir, and a follow-up restores it. Its output is
plain text: an applied edit becomes a tool call and result, the rest log lines.
"""

from __future__ import annotations

from kilod.agents.base import HOME, AgentEvent, Launch, Outcome, Request, base_env, clip, raw_log
from kilod.agents.catalog import CATALOG
from kilod.domain import EventKind

HISTORY = f"{HOME}/aider.chat.history.md"
SUMMARY_LIMIT = 2000


class Aider:
    name = "aider"

    def session_for(self, attempt_id: str) -> str | None:
        return HISTORY  # the chat history file is its session

    def launch(self, request: Request) -> Launch:
        argv = [CATALOG[self.name].executable(), "--message", request.prompt,
                "--model", "openai/kilod", "--yes-always", "--no-auto-commits", "--no-dirty-commits",
                "--no-check-update", "--no-analytics", "--analytics-disable", "--no-show-model-warnings",
                "--no-pretty", "--no-stream", "--no-fancy-input", "--no-detect-urls", "--no-gitignore", "--no-git",
                "--map-tokens", "0", "--edit-format", "whole",
                "--chat-history-file", HISTORY, "--input-history-file", f"{HOME}/aider.input.history"]
        if request.run > 1:
            argv.append("--restore-chat-history")
        env = {**base_env(request), "OPENAI_API_BASE": request.base_url + "/v1", "OPENAI_API_KEY": request.token,
               "AIDER_ANALYTICS": "false", "AIDER_CHECK_UPDATE": "false", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "PYTHONUNBUFFERED": "1"}  # its lines reach the output file as it prints them
        return Launch(argv=argv, env=env)

    def finish(self, outcome: Outcome) -> list[AgentEvent]:
        return []  # every line stands alone

    def parse(self, line: str, outcome: Outcome) -> list[AgentEvent]:
        text = line.rstrip()
        if not text.strip():
            return []
        if text.startswith("Applied edit to "):
            path = text[len("Applied edit to "):].strip()
            call = f"edit-{len(outcome.calls)}"
            outcome.calls[call] = "edit"
            return [AgentEvent(EventKind.TOOL_CALL, {"id": call, "name": "edit", "arguments": clip(path, 500)}),
                    AgentEvent(EventKind.TOOL_RESULT, {"id": call, "name": "edit", "ok": True, "output": text})]
        outcome.finished = True  # aider reports no end of its own: an exit status 0 is its end
        # plain text: the model's reply is not told apart from aider's notes, so the summary is
        # what it printed last (its reply, the edits' and tokens' lines), not its first words
        summary = (outcome.summary + "\n" + text).strip()
        outcome.summary = summary[-SUMMARY_LIMIT:]
        return [raw_log(text)]
