"""Claude Code: `claude -p … --output-format stream-json --verbose`, its stream as kilod events.

The session id is ours to choose (`--session-id`, a UUID derived from the attempt), so a
follow-up resumes it (`--resume`) even when the first run died before saying it. Its
sessions live under $HOME/.claude in the attempt's state dir.

Stream lines (one JSON object each): `system/init`; `assistant` with content blocks
(`text`, `thinking`, `tool_use`); `user` with `tool_result` blocks; `result` at the end
(`result` text, `is_error`, `subtype`). Normalised like vibe-kanban's executors/claude.rs.
"""

from __future__ import annotations

import uuid
from typing import Any

from kilod.agents.base import (
    AgentEvent,
    Launch,
    Outcome,
    Request,
    arguments,
    base_env,
    clip,
    json_line,
    raw_log,
    text_of,
)
from kilod.agents.catalog import CATALOG
from kilod.domain import EventKind

_SESSIONS = uuid.UUID("5a1c0d7e-4b1d-4c6e-9a8f-6b696c6f6401")  # namespace for attempt → session ids


class ClaudeCode:
    name = "claude-code"

    def session_for(self, attempt_id: str) -> str:
        return str(uuid.uuid5(_SESSIONS, attempt_id))

    def launch(self, request: Request) -> Launch:
        session = request.session or self.session_for(request.attempt_id)
        argv = [CATALOG[self.name].executable(), "-p", request.prompt,
                "--output-format", "stream-json", "--verbose",
                # the container is the boundary: no prompt could be answered anyway
                "--dangerously-skip-permissions",
                "--max-turns", str(request.max_turns)]
        argv += ["--resume", session] if request.run > 1 else ["--session-id", session]
        env = {
            **base_env(request),
            "ANTHROPIC_BASE_URL": request.base_url,
            "ANTHROPIC_AUTH_TOKEN": request.token,
            "CLAUDE_CONFIG_DIR": f"{base_env(request)['HOME']}/.claude",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_BUG_COMMAND": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
            "IS_SANDBOX": "1",  # allows skipping permissions even where the sandbox user is root
        }
        return Launch(argv=argv, env=env)

    def finish(self, outcome: Outcome) -> list[AgentEvent]:
        return []  # every line stands alone

    def parse(self, line: str, outcome: Outcome) -> list[AgentEvent]:
        data = json_line(line)
        if data is None:
            return [raw_log(line)] if line.strip() else []
        kind = data.get("type")
        if isinstance(data.get("session_id"), str):
            outcome.session = data["session_id"]
        if kind == "system":
            if data.get("subtype") == "init":
                return [AgentEvent(EventKind.LOG, {"message": f"claude code started (model {data.get('model')}, "
                                                              f"session {data.get('session_id')})"})]
            return []
        if kind in ("assistant", "user"):
            message = data.get("message")
            blocks = message.get("content") if isinstance(message, dict) else None
            if isinstance(blocks, str):
                blocks = [{"type": "text", "text": blocks}]
            return [e for b in blocks or [] if isinstance(b, dict) for e in _block(kind, b, outcome)]
        if kind == "result":
            outcome.finished = True
            result = data.get("result")
            outcome.summary = result if isinstance(result, str) else ""
            if data.get("is_error") or data.get("subtype") not in (None, "success"):
                outcome.error = f"claude code ended with {data.get('subtype')}: {clip(str(result or ''), 500)}"
            return [AgentEvent(EventKind.LOG, {"message": f"claude code finished ({data.get('subtype')}, "
                                                          f"{data.get('num_turns')} turns)"})]
        return []


def _block(role: str, block: dict[str, Any], outcome: Outcome) -> list[AgentEvent]:
    kind = block.get("type")
    if kind == "text" and role == "assistant":
        return [AgentEvent(EventKind.MESSAGE, {"role": "assistant", "content": clip(text_of(block.get("text")))})]
    if kind == "thinking":
        return [AgentEvent(EventKind.LOG, {"message": "thinking: " + clip(text_of(block.get("thinking")), 2000)})]
    if kind == "tool_use":
        call_id, name = str(block.get("id", "")), str(block.get("name", "?"))
        outcome.calls[call_id] = name
        return [AgentEvent(EventKind.TOOL_CALL, {"id": call_id, "name": name,
                                                 "arguments": arguments(block.get("input", {}))})]
    if kind == "tool_result":
        call_id = str(block.get("tool_use_id", ""))
        return [AgentEvent(EventKind.TOOL_RESULT, {"id": call_id, "name": outcome.calls.get(call_id, "?"),
                                                   "ok": not block.get("is_error"),
                                                   "output": clip(text_of(block.get("content")))})]
    return []
