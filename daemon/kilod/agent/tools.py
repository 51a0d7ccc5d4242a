"""The agent's tools. Every one runs inside the attempt's container, never on the host."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from kilod.agent.files import (
    LIST_LIMIT,
    READ_LINES,
    SEARCH_LIMIT,
    TODO_STATUSES,
    TodoItem,
    cap_lines,
    edited_region,
    list_command,
    parse_todo,
    python_problem,
    read_window,
    render_todo,
    search_command,
)
from kilod.agent.shell import call_key, kill_script, orphan_script, shell_script
from kilod.errors import KilodError
from kilod.metrics import Metrics
from kilod.sandbox.base import Sandbox

FINISH = "finish"


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_PATH = {"type": "string", "description": "path, relative to /workspace or absolute"}

_GLOB = {"type": "string", "description": "only paths matching this glob, e.g. '*.py' or 'src/**/*.ts'"}
TODO = "todo"

TOOL_SCHEMAS: list[dict[str, Any]] = [
    _tool("shell", "Run a shell command (bash, else sh) in the sandbox. The working directory and exported "
                   "variables carry over to the next call; background processes keep running. Returns the exit "
                   "code and the output (long output is cut in the middle).",
          {"command": {"type": "string"},
           "timeout": {"type": "integer", "description": "seconds, default and cap set by the daemon"}},
          ["command"]),
    _tool("read_file", f"Read a text file, lines numbered from 1: {READ_LINES} lines from `offset` unless "
                       "`limit` says otherwise; a note says which lines were left out.",
          {"path": _PATH, "offset": {"type": "integer", "description": "first line (1-based)"},
           "limit": {"type": "integer", "description": "number of lines"}},
          ["path"]),
    _tool("write_file", "Create or overwrite a file with the given content.",
          {"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
    _tool("edit_file", "Replace one exact occurrence of old_string with new_string in a file (read it first). "
                       "Answers with the edited lines; Python files are syntax-checked.",
          {"path": _PATH, "old_string": {"type": "string"}, "new_string": {"type": "string"}},
          ["path", "old_string", "new_string"]),
    _tool("list_files", "List files under a folder, honouring .gitignore (hidden files shown, .git not).",
          {"path": _PATH, "depth": {"type": "integer", "description": "folder levels, default 3"}, "glob": _GLOB}, []),
    _tool("search", "Search file contents for a regular expression, honouring .gitignore; returns file:line:text.",
          {"pattern": {"type": "string"}, "path": _PATH, "glob": _GLOB,
           "ignore_case": {"type": "boolean", "description": "default false"}}, ["pattern"]),
    _tool(TODO, "Keep a short plan for this task: the whole list each time (it replaces the previous one). "
                "The person watching sees it.",
          {"items": {"type": "array", "items": {"type": "object", "properties": {
              "text": {"type": "string"}, "status": {"type": "string", "enum": list(TODO_STATUSES)}},
              "required": ["text", "status"]}}}, ["items"]),
    _tool(FINISH, "Call when the task is done. The work then waits for a person's review.",
          {"summary": {"type": "string", "description": "what you changed and why"}}, ["summary"]),
]
TOOL_NAMES = frozenset(t["function"]["name"] for t in TOOL_SCHEMAS)
_PARAMETERS: dict[str, dict[str, Any]] = {t["function"]["name"]: t["function"]["parameters"] for t in TOOL_SCHEMAS}
_JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float),
                                            "boolean": (bool,), "array": (list,), "object": (dict,)}


def argument_problems(name: str, arguments: dict[str, Any]) -> list[str]:
    """What is wrong with a call's arguments against the tool's schema, in words the model can act on."""
    schema = _PARAMETERS[name]
    properties: dict[str, Any] = schema.get("properties", {})
    problems = [f"missing required argument '{key}'" for key in schema.get("required", []) if key not in arguments]
    for key, value in arguments.items():
        if key not in properties:
            problems.append(f"unknown argument '{key}' (arguments are: {', '.join(properties) or 'none'})")
            continue
        expected = properties[key].get("type")
        types = _JSON_TYPES.get(expected or "", (object,))
        wrong = not isinstance(value, types) or (expected in ("integer", "number") and isinstance(value, bool))
        if value is not None and wrong:
            problems.append(f"argument '{key}' must be {'an' if expected == 'integer' else 'a'} {expected}, "
                            f"not {type(value).__name__} {json.dumps(value)[:60]}")
    return problems


def truncate(text: str, limit: int) -> str:
    """Keep the head and the tail; the middle of long output is rarely what matters."""
    if len(text) <= limit:
        return text
    head = int(limit * 0.6)
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[… {cut} characters cut …]\n{text[-tail:]}"


@dataclass(frozen=True)
class ToolOutcome:
    output: str
    ok: bool
    finished: bool = False
    summary: str | None = None
    todo: list[TodoItem] | None = None   # the model's new todo list, shown on the card


class ToolError(Exception):
    """Wrong arguments or a failed operation: told to the model, not raised further."""


@dataclass
class ToolRunner:
    sandbox: Sandbox
    container_id: str
    uid: int
    gid: int
    shell_timeout: float
    output_limit: int
    metrics: Metrics | None = None
    _key: str = "anon"   # the running call's key: its process group is recorded under it

    async def run(self, name: str, arguments_json: str, call_id: str = "") -> ToolOutcome:
        started = time.monotonic()
        self._key = call_key(call_id or f"anon-{time.monotonic_ns()}")
        outcome = await self._run(name, arguments_json)
        if self.metrics is not None:
            tool = name if name in TOOL_NAMES else "unknown"  # the model may invent names: keep labels bounded
            self.metrics.tool_calls.labels(tool, "ok" if outcome.ok else "error").inc()
            self.metrics.tool_duration.labels(tool).observe(time.monotonic() - started)
        return outcome

    async def _run(self, name: str, arguments_json: str) -> ToolOutcome:
        try:
            arguments = json.loads(arguments_json or "{}")
            if not isinstance(arguments, dict):
                raise ToolError("arguments must be a JSON object")
            if name not in TOOL_NAMES:
                raise ToolError(f"unknown tool '{name}'; tools are: {', '.join(sorted(TOOL_NAMES))}")
            if name == FINISH:  # lenient: a finish without a proper summary still ends the work
                summary = str(arguments.get("summary", "")).strip()
                return ToolOutcome("done; the work now waits for review", True, finished=True, summary=summary)
            problems = argument_problems(name, arguments)
            if problems:
                raise ToolError(f"bad arguments for {name}: {'; '.join(problems)}; the call was not run")
            if name == TODO:
                todo = parse_todo(arguments["items"])
                return ToolOutcome(render_todo(todo), True, todo=todo)
            output, ok = await getattr(self, f"_{name}")(**arguments)
        except json.JSONDecodeError as exc:
            return ToolOutcome(f"error: arguments are not valid JSON: {exc}", False)
        except (TypeError, ValueError) as exc:
            return ToolOutcome(f"error: bad arguments for {name}: {exc}", False)
        except (ToolError, KilodError) as exc:
            return ToolOutcome(f"error: {exc}", False)
        return ToolOutcome(truncate(output, self.output_limit), ok)

    async def _sh(self, command: str, timeout: float | None = None) -> tuple[int, str, bool]:
        seconds = min(float(timeout or self.shell_timeout), self.shell_timeout)
        result = await asyncio.to_thread(self.sandbox.exec, self.container_id, command, seconds)
        return result.exit_code, result.output, result.timed_out

    async def abandon(self, call_id: str) -> bool:
        """Kill what is left of a call (its process group) in the container; True if something was running."""
        try:
            result = await asyncio.to_thread(self.sandbox.exec, self.container_id, kill_script(call_key(call_id)), 30)
        except KilodError:
            return False   # the container is gone, and the call's processes with it
        return "killed" in result.output

    async def orphan(self, call_id: str) -> tuple[str, str]:
        """How a call the daemon lost track of ended ("exit N", "killed", "unknown") and the tail of its output.

        A call still running is given the rest of the shell timeout to end, then killed.
        """
        script = orphan_script(call_key(call_id), int(self.shell_timeout), self.output_limit)
        try:
            result = await asyncio.to_thread(self.sandbox.exec, self.container_id, script, self.shell_timeout + 30)
        except KilodError:
            return "unknown", ""   # the container is gone, and the call's processes with it
        head, _, tail = result.output.partition("\n---\n")
        return head.removeprefix("ended: ").strip() or "unknown", tail

    async def _shell(self, command: str, timeout: int | None = None) -> tuple[str, bool]:
        if not isinstance(command, str) or not command.strip():
            raise ToolError("command must be a non-empty string")
        key = self._key
        try:
            code, output, timed_out = await self._sh(shell_script(command, key), timeout)
        except asyncio.CancelledError:
            # the attempt was cancelled (or the daemon stops): the command must not run on in the container
            await asyncio.shield(self.abandon(key))
            raise
        note = " (timed out)" if timed_out else ""
        return f"exit code {code}{note}\n{output}", code == 0

    async def _read(self, path: str) -> str:
        data, cut = await asyncio.to_thread(self.sandbox.copy_out, self.container_id, path, 4 * 1024 * 1024)
        if b"\0" in data[:8192]:
            raise ToolError(f"{path} looks binary ({len(data)} bytes)")
        text = data.decode("utf-8", errors="replace")
        return text + ("\n[file cut at 4 MiB]" if cut else "")

    async def _read_file(self, path: str, offset: int = 1, limit: int | None = None) -> tuple[str, bool]:
        text = await self._read(path)
        return read_window(path, text, offset or 1, limit, self.output_limit - 200), True

    async def _write_file(self, path: str, content: str) -> tuple[str, bool]:
        if not isinstance(content, str):
            raise ToolError("content must be a string")
        data = await self._put(path, content)
        problem = await asyncio.to_thread(python_problem, path, content)   # a big file must not stall the loop
        warning = f"\nwarning: {path} does not parse as Python: {problem}" if problem else ""
        return f"wrote {len(data)} bytes to {path}{warning}", True

    async def _put(self, path: str, content: str) -> bytes:
        """Write the file in the container as the sandbox user, keeping an existing file's mode."""
        data = content.encode()
        mode = await asyncio.to_thread(self.sandbox.file_mode, self.container_id, path)
        await asyncio.to_thread(self.sandbox.copy_in, self.container_id, path, data, self.uid, self.gid,
                                mode or 0o644)
        return data

    async def _edit_file(self, path: str, old_string: str, new_string: str) -> tuple[str, bool]:
        if not old_string:
            raise ToolError("old_string must not be empty")
        text = await self._read(path)
        count = text.count(old_string)
        if count == 0:
            raise ToolError(f"old_string not found in {path}; read the file again for its exact text")
        if count > 1:
            raise ToolError(f"old_string occurs {count} times in {path}; give more context so it is unique")
        at = text.index(old_string)
        edited = text[:at] + new_string + text[at + len(old_string):]
        await self._put(path, edited)
        answer = f"edited {path}:\n{edited_region(edited, at, len(new_string))}"
        problem = await asyncio.to_thread(python_problem, path, edited)
        if problem and not await asyncio.to_thread(python_problem, path, text):   # only what this edit broke
            answer += f"\nwarning: {path} no longer parses as Python: {problem}"
        return answer, True

    async def _list_files(self, path: str = ".", depth: int = 3, glob: str | None = None) -> tuple[str, bool]:
        code, output, _ = await self._sh(list_command(path, max(1, min(int(depth), 20)), glob), 60)
        return cap_lines(output, LIST_LIMIT, "paths") or "(no files)", code == 0

    async def _search(self, pattern: str, path: str = ".", glob: str | None = None,
                      ignore_case: bool = False) -> tuple[str, bool]:
        _, output, _ = await self._sh(search_command(pattern, path, glob, bool(ignore_case)), 60)
        return cap_lines(output, SEARCH_LIMIT, "matching lines") or "(no matches)", True
