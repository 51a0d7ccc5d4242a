"""mini-swe-agent: `mini -t … --yolo --exit-immediately`, through the gateway's OpenAI Chat endpoint.

Like aider it runs litellm inside (an `openai/…` model, OPENAI_API_BASE at the
forwarder). Its agent is `kilod_mini.KilodAgent` (kilod/agents/mini_shim.py, written into
the state dir): mini's own InteractiveAgent, printing each message it adds to its
conversation as one JSON line, and restoring the previous run's conversation from its
trajectory file on a follow-up (mini-swe-agent has no session of its own to resume).
Its trajectories go to the state dir, one per run; that folder is its "session".

Lines: `{"kilod-mini": 1, "role", "content", "tool_calls": [{"id", "command"}],
"tool_call_id", "returncode", "exit_status", "interrupt_type"}`. An assistant's becomes a
`message` and a `tool_call` per command (before the command runs); a `tool` message a
`tool_result`; the `exit` message its end; the prompt (system, the task) is left out.
Anything else it prints is a `log` line.
"""

from __future__ import annotations

import re
from pathlib import Path
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

TRAJECTORIES = f"{HOME}/mini-trajectories"
SHIM_DIR = "mini"   # under the state dir: holds kilod_mini.py, on the agent's PYTHONPATH
MARK = "kilod-mini"
_RULE = re.compile(r"^[─━-]{20,}$")
_SHIM = Path(__file__).with_name("mini_shim.py")


class MiniSweAgent:
    name = "mini-swe-agent"

    def session_for(self, attempt_id: str) -> str | None:
        return TRAJECTORIES   # its conversation, restored on a follow-up by kilod_mini

    def launch(self, request: Request) -> Launch:
        argv = [CATALOG[self.name].executable(), "-t", request.prompt, "--yolo", "--exit-immediately",
                "-m", "openai/kilod", "--cost-limit", "0",
                "-c", "mini.yaml", "-c", f"agent.step_limit={int(request.max_turns)}",
                "--agent-class", "kilod_mini.KilodAgent",
                "-o", f"{TRAJECTORIES}/run-{request.run}.json"]
        env = {**base_env(request), "OPENAI_API_BASE": request.base_url + "/v1", "OPENAI_API_KEY": request.token,
               "MSWEA_CONFIGURED": "true", "MSWEA_COST_TRACKING": "ignore_errors",
               "MSWEA_GLOBAL_CONFIG_DIR": f"{HOME}/.config/mini-swe-agent", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "PYTHONPATH": f"{STATE_MOUNT}/{SHIM_DIR}", "PYTHONUNBUFFERED": "1",
               "KILOD_MINI_TRAJECTORIES": TRAJECTORIES, "KILOD_MINI_RUN": str(request.run),
               "COLUMNS": "400"}  # rich wraps at 80 columns without a terminal
        return Launch(argv=argv, env=env, files={f"{SHIM_DIR}/kilod_mini.py": _SHIM.read_text(),
                                                 "home/mini-trajectories/.keep": ""})

    def finish(self, outcome: Outcome) -> list[AgentEvent]:
        return []  # every line stands alone

    def parse(self, line: str, outcome: Outcome) -> list[AgentEvent]:
        data = json_line(line)
        if data is None or data.get(MARK) != 1:
            text = line.strip()
            return [] if not text or _RULE.match(text) else [raw_log(line)]
        role = data.get("role")
        if role == "assistant":
            return _assistant(data, outcome)
        if role == "tool" or (role == "user" and data.get("tool_call_id")):
            call = str(data.get("tool_call_id") or f"bash-{len(outcome.calls)}")
            return [AgentEvent(EventKind.TOOL_RESULT, {
                "id": call, "name": outcome.calls.get(call, "bash"), "ok": data.get("returncode") == 0,
                "exit_code": data.get("returncode"), "output": clip(text_of(data.get("content")))})]
        if role == "exit":
            outcome.finished = True
            status = str(data.get("exit_status") or "")
            if status != "Submitted":
                outcome.error = f"mini-swe-agent stopped ({status}): {clip(text_of(data.get('content')), 500)}"
                return [AgentEvent(EventKind.LOG, {"message": outcome.error})]
            return [AgentEvent(EventKind.LOG, {"message": "mini-swe-agent submitted"})]
        if role == "user" and data.get("interrupt_type"):   # a format error mini answers its model with
            return [AgentEvent(EventKind.LOG, {"message": f"mini-swe-agent: {data.get('interrupt_type')}: "
                                                          + clip(text_of(data.get("content")), 2000)})]
        return []   # system prompt and task: the card already shows them


def _assistant(data: dict[str, Any], outcome: Outcome) -> list[AgentEvent]:
    events = []
    text = text_of(data.get("content")).strip()
    if text:
        outcome.summary = clip(text, 2000)
        events.append(AgentEvent(EventKind.MESSAGE, {"role": "assistant", "content": clip(text)}))
    calls = data.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        call_id = str(call.get("id") or f"bash-{len(outcome.calls)}")
        outcome.calls[call_id] = "bash"
        events.append(AgentEvent(EventKind.TOOL_CALL, {"id": call_id, "name": "bash",
                                                       "arguments": arguments({"command": call.get("command")})}))
    return events
