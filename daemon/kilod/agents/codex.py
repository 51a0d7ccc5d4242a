"""Codex: `codex exec --json …`, with a `kilod` model provider in $CODEX_HOME/config.toml.

Codex ignores OPENAI_BASE_URL (it would dial wss://api.openai.com), so the provider is
written into its config: base_url is the forwarder, `env_key` names the variable that
holds the attempt's token, `wire_api = "responses"`. CODEX_HOME is in the attempt's
state dir, so its sessions survive the container and a follow-up is
`codex exec resume <thread id>`.

Stream lines: `thread.started` (the thread id), `turn.started`, `item.started` /
`item.updated` / `item.completed` with an `item` of type `agent_message`, `reasoning`,
`command_execution`, `file_change`, `mcp_tool_call`, `web_search`, `todo_list`, `error`;
`turn.completed` (usage), `turn.failed`, `error`.
"""

from __future__ import annotations

import json
from typing import Any

from kilod.agents.base import (
    HOME,
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
from kilod.agents.catalog import CATALOG, STATE_MOUNT
from kilod.domain import EventKind

CODEX_HOME = f"{STATE_MOUNT}/codex"
TOKEN_VARIABLE = "KILOD_GATEWAY_TOKEN"


def config_toml(base_url: str) -> str:
    """The whole config: our provider, no approvals, no sandbox of its own (the container is one)."""
    def q(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return "\n".join([
        'model = "kilod"',
        'model_provider = "kilod"',
        'approval_policy = "never"',
        'sandbox_mode = "danger-full-access"',
        "check_for_update_on_startup = false",
        "",
        "[model_providers.kilod]",
        'name = "kilod gateway"',
        f"base_url = {q(base_url + '/v1')}",
        f"env_key = {q(TOKEN_VARIABLE)}",
        'wire_api = "responses"',
        "request_max_retries = 2",
        "stream_max_retries = 2",
        "",
        "[analytics]",
        "enabled = false",
        "",
        "[feedback]",
        "enabled = false",
        "",
    ])


class Codex:
    name = "codex"

    def session_for(self, attempt_id: str) -> str | None:
        return None  # codex names its thread itself (thread.started)

    def launch(self, request: Request) -> Launch:
        flags = ["--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
                 "-C", "/workspace"]
        executable = CATALOG[self.name].executable()
        if request.run > 1 and request.session:
            argv = [executable, "exec", *flags, "resume", request.session, request.prompt]
        else:
            argv = [executable, "exec", *flags, request.prompt]
        env = {
            **base_env(request),
            "CODEX_HOME": CODEX_HOME,
            TOKEN_VARIABLE: request.token,
            # its bundled ripgrep, for its search tool
            "PATH": f"{CATALOG[self.name].mounted_at()}/codex-path:" + base_env(request)["PATH"],
            "RUST_LOG": "error",
        }
        files = {"codex/config.toml": config_toml(request.base_url), "home/.keep": ""}
        assert HOME.startswith(STATE_MOUNT)
        return Launch(argv=argv, env=env, files=files)

    def finish(self, outcome: Outcome) -> list[AgentEvent]:
        return []  # every line stands alone

    def parse(self, line: str, outcome: Outcome) -> list[AgentEvent]:
        data = json_line(line)
        if data is None:
            return [raw_log(line)] if line.strip() else []
        kind = data.get("type")
        if kind == "thread.started" and isinstance(data.get("thread_id"), str):
            outcome.session = data["thread_id"]
            return [AgentEvent(EventKind.LOG, {"message": f"codex thread {data['thread_id']}"})]
        if kind in ("item.started", "item.completed") and isinstance(data.get("item"), dict):
            return _item(data["item"], kind == "item.completed", outcome)
        if kind == "turn.completed":
            outcome.finished = True
            outcome.error = None
            return []
        if kind == "turn.failed":
            error = data.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            outcome.error = f"codex turn failed: {clip(str(message), 500)}"
            return [AgentEvent(EventKind.LOG, {"message": outcome.error})]
        if kind == "error":
            return [AgentEvent(EventKind.LOG, {"message": "codex: " + clip(str(data.get("message")), 2000)})]
        return []


def _item(item: dict[str, Any], completed: bool, outcome: Outcome) -> list[AgentEvent]:
    kind, item_id = item.get("type"), str(item.get("id", ""))
    if kind == "agent_message" and completed:
        text = clip(text_of(item.get("text")))
        outcome.summary = text
        return [AgentEvent(EventKind.MESSAGE, {"role": "assistant", "content": text})]
    if kind == "reasoning" and completed:
        return [AgentEvent(EventKind.LOG, {"message": "thinking: " + clip(text_of(item.get("text")), 2000)})]
    if kind == "command_execution":
        if not completed:
            outcome.calls[item_id] = "exec_command"
            return [AgentEvent(EventKind.TOOL_CALL, {"id": item_id, "name": "exec_command",
                                                     "arguments": arguments({"cmd": item.get("command")})})]
        events = []
        if item_id not in outcome.calls:  # completed without a start line (older codex): show the call too
            events.append(AgentEvent(EventKind.TOOL_CALL, {"id": item_id, "name": "exec_command",
                                                           "arguments": arguments({"cmd": item.get("command")})}))
        exit_code = item.get("exit_code")
        events.append(AgentEvent(EventKind.TOOL_RESULT, {
            "id": item_id, "name": "exec_command", "ok": exit_code == 0 and item.get("status") != "failed",
            "exit_code": exit_code, "output": clip(text_of(item.get("aggregated_output")))}))
        return events
    if kind == "file_change" and completed:
        changes: list[Any] = item["changes"] if isinstance(item.get("changes"), list) else []
        listed = [f"{c.get('kind')} {c.get('path')}" for c in changes if isinstance(c, dict)]
        return [AgentEvent(EventKind.TOOL_CALL, {"id": item_id, "name": "apply_patch",
                                                 "arguments": arguments({"changes": listed})}),
                AgentEvent(EventKind.TOOL_RESULT, {"id": item_id, "name": "apply_patch",
                                                   "ok": item.get("status") != "failed",
                                                   "output": clip("\n".join(listed))})]
    if kind == "mcp_tool_call" and completed:
        name = f"{item.get('server')}.{item.get('tool')}"
        return [AgentEvent(EventKind.TOOL_CALL, {"id": item_id, "name": name,
                                                 "arguments": arguments(item.get("arguments", {}))}),
                AgentEvent(EventKind.TOOL_RESULT, {"id": item_id, "name": name, "ok": item.get("status") != "failed",
                                                   "output": clip(text_of(json.dumps(item.get("result"))))})]
    if kind == "error" and completed:
        return [AgentEvent(EventKind.LOG, {"message": "codex: " + clip(text_of(item.get("message")), 2000)})]
    if kind in ("web_search", "todo_list") and completed:
        return [AgentEvent(EventKind.LOG, {"message": f"codex {kind}: " + arguments(item)})]
    return []
