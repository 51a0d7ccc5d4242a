"""Runs inside the sandbox, in mini-swe-agent's own venv: never imported by the daemon.

The mini-swe-agent adapter writes this file into the attempt's state dir as `kilod_mini.py`
and runs the real `mini` CLI with `--agent-class kilod_mini.KilodAgent`. The agent is mini's
own InteractiveAgent (its loop, model, environment, prompts and yolo mode) with two changes:

- each message it adds to its conversation is printed as one JSON line (instead of its rich
  console view), as soon as it is added: the daemon sees an assistant's command before it
  runs, and a message's end without waiting for the next header;
- a follow-up continues the previous conversation. mini-swe-agent has no session to resume,
  but its trajectory file holds the whole conversation: the newest trajectory of an earlier
  run is restored (its `exit` message dropped) and the person's message becomes the next
  user turn, in place of a fresh system prompt and task.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from minisweagent.agents.default import DefaultAgent
from minisweagent.agents.interactive import InteractiveAgent

MARK = "kilod-mini"


def emit(message: dict[str, Any]) -> None:
    extra = message.get("extra") if isinstance(message.get("extra"), dict) else {}
    assert isinstance(extra, dict)
    line = {
        MARK: 1,
        "role": message.get("role"),
        "content": message.get("content"),
        "tool_calls": [{"id": a.get("tool_call_id"), "command": a.get("command")}
                       for a in extra.get("actions") or [] if isinstance(a, dict)],
        "tool_call_id": message.get("tool_call_id"),
        "returncode": extra.get("returncode"),
        "exit_status": extra.get("exit_status"),
        "interrupt_type": extra.get("interrupt_type"),
    }
    sys.stdout.write(json.dumps(line, default=str) + "\n")
    sys.stdout.flush()


def previous_conversation() -> list[dict[str, Any]] | None:
    """The conversation of the newest earlier run that saved one, or None (a first run)."""
    folder = Path(os.environ.get("KILOD_MINI_TRAJECTORIES", ""))
    run = int(os.environ.get("KILOD_MINI_RUN", "1"))
    for earlier in range(run - 1, 0, -1):
        try:
            data = json.loads((folder / f"run-{earlier}.json").read_text())
        except (OSError, ValueError):
            continue
        messages = data.get("messages") if isinstance(data, dict) else None
        if isinstance(messages, list) and messages:
            return [m for m in messages if isinstance(m, dict) and m.get("role") != "exit"]
    return None


class KilodAgent(InteractiveAgent):  # type: ignore[misc]
    def run(self, task: str = "", **kwargs: Any) -> Any:
        self._restore = previous_conversation() if int(os.environ.get("KILOD_MINI_RUN", "1")) > 1 else None
        if self._restore is None and int(os.environ.get("KILOD_MINI_RUN", "1")) > 1:
            print("kilod: no earlier conversation was saved; this follow-up starts afresh", flush=True)
        return super().run(task, **kwargs)

    def add_messages(self, *messages: dict[str, Any]) -> list[dict[str, Any]]:
        restore = getattr(self, "_restore", None)
        if restore is not None and not self.messages:   # run() starting: system prompt + task
            self._restore = None
            DefaultAgent.add_messages(self, *restore)    # shown by the earlier run already
            print(f"kilod: continuing the earlier conversation ({len(restore)} messages)", flush=True)
            task = str(self.extra_template_vars.get("task", ""))
            messages = (self.model.format_message(role="user", content=task),)
        for message in messages:
            emit(message)
        added: list[dict[str, Any]] = DefaultAgent.add_messages(self, *messages)
        return added
