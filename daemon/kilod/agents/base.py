"""What an agent adapter is: a command line, an environment, a few files, and a stream parser.

An adapter knows one agent CLI and nothing about Docker or the store. The runner asks it
for a `Launch` (argv, env, files to write into the attempt's state dir) and feeds it the
agent's output one line at a time; the adapter turns each line into kilod events
(`message`, `tool_call`, `tool_result`, `log`) and remembers what the next run needs
(the agent's own session id, its last words).

The output is the agent's: treat every line as hostile. Lines that are not what the
adapter expects become `log` events, cut to a bounded size; nothing raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from kilod.agents.catalog import STATE_MOUNT
from kilod.domain import EventKind

TEXT_LIMIT = 8000       # characters of one message / tool result kept in an event
ARGUMENT_LIMIT = 4000   # characters of one tool call's arguments kept

HOME = f"{STATE_MOUNT}/home"


@dataclass(frozen=True)
class Request:
    """One run of an agent: the first (the card's prompt) or a follow-up (the person's message)."""

    prompt: str
    run: int
    base_url: str          # http://127.0.0.1:PORT: the forwarder in the attempt's network namespace
    token: str             # the attempt's gateway token; the only credential the agent ever holds
    attempt_id: str
    model: str             # the attempt's model (the gateway pins it whatever the agent asks for)
    session: str | None    # the agent's own session from the previous run, for follow-ups
    max_turns: int


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)  # path under the state dir → content, written first


@dataclass(frozen=True)
class AgentEvent:
    kind: EventKind
    payload: dict[str, Any]


@dataclass
class Outcome:
    """What the stream said by its end."""

    session: str | None = None
    summary: str = ""
    error: str | None = None
    finished: bool = False   # the agent reported its own end (a result line), not only an exit
    calls: dict[str, str] = field(default_factory=dict)  # tool call id → tool name, to name results
    block_role: str = ""                                  # an adapter reading blocks: the one being read
    block: list[str] = field(default_factory=list)


class Adapter(Protocol):
    name: str

    def launch(self, request: Request) -> Launch:
        """The command line and environment of one run."""
        ...

    def session_for(self, attempt_id: str) -> str | None:
        """A session id known before the first run (an agent that lets us choose it), else None."""
        ...

    def parse(self, line: str, outcome: Outcome) -> list[AgentEvent]:
        """Events for one line of the agent's output; updates `outcome` in place."""
        ...

    def finish(self, outcome: Outcome) -> list[AgentEvent]:
        """Events still held when the output has ended (an adapter that reads blocks)."""
        ...


# -- helpers the adapters share ----------------------------------------------------------

def base_env(request: Request) -> dict[str, str]:
    """What every agent gets: its HOME in the state dir (outside the worktree), no colours, no pager."""
    return {
        "HOME": HOME,
        "XDG_CONFIG_HOME": f"{HOME}/.config",
        "XDG_CACHE_HOME": f"{HOME}/.cache",
        "XDG_DATA_HOME": f"{HOME}/.local/share",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "PAGER": "cat",
        "GIT_PAGER": "cat",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "KILOD_ATTEMPT": request.attempt_id,
    }


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… [{len(text) - limit} more characters]"


def json_line(line: str) -> dict[str, Any] | None:
    """The line as a JSON object, or None when it is anything else."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def text_of(content: Any) -> str:
    """Plain text of a content value: a string, or a list of blocks with `text` fields."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(text_of(b.get("text", b.get("content", ""))) if isinstance(b, dict) else str(b)
                         for b in content)
    return "" if content is None else str(content)


def arguments(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return clip(text, ARGUMENT_LIMIT)


def raw_log(line: str) -> AgentEvent:
    return AgentEvent(EventKind.LOG, {"message": clip(line.rstrip(), 2000)})
