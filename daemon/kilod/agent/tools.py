"""The agent's tools. Every one runs inside the attempt's container, never on the host."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from dataclasses import dataclass
from typing import Any

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

TOOL_SCHEMAS: list[dict[str, Any]] = [
    _tool("shell", "Run a shell command (sh -c) in /workspace. Returns exit code and output.",
          {"command": {"type": "string"},
           "timeout": {"type": "integer", "description": "seconds, default and cap set by the daemon"}},
          ["command"]),
    _tool("read_file", "Read a text file. Lines are numbered from 1.",
          {"path": _PATH, "offset": {"type": "integer", "description": "first line (1-based)"},
           "limit": {"type": "integer", "description": "number of lines"}},
          ["path"]),
    _tool("write_file", "Create or overwrite a file with the given content.",
          {"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
    _tool("edit_file", "Replace one exact occurrence of old_string with new_string in a file.",
          {"path": _PATH, "old_string": {"type": "string"}, "new_string": {"type": "string"}},
          ["path", "old_string", "new_string"]),
    _tool("list_files", "List files under a folder (hidden files and .git excluded).",
          {"path": _PATH, "depth": {"type": "integer", "description": "default 3"}}, []),
    _tool("search", "Search file contents for a regular expression; returns file:line:text.",
          {"pattern": {"type": "string"}, "path": _PATH}, ["pattern"]),
    _tool(FINISH, "Call when the task is done. The work then waits for a person's review.",
          {"summary": {"type": "string", "description": "what you changed and why"}}, ["summary"]),
]
TOOL_NAMES = frozenset(t["function"]["name"] for t in TOOL_SCHEMAS)


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

    async def run(self, name: str, arguments_json: str) -> ToolOutcome:
        started = time.monotonic()
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
            if name == FINISH:
                summary = str(arguments.get("summary", "")).strip()
                return ToolOutcome("done; the work now waits for review", True, finished=True, summary=summary)
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

    async def _shell(self, command: str, timeout: int | None = None) -> tuple[str, bool]:
        if not isinstance(command, str) or not command.strip():
            raise ToolError("command must be a non-empty string")
        code, output, timed_out = await self._sh(command, timeout)
        note = " (timed out)" if timed_out else ""
        return f"exit code {code}{note}\n{output}", code == 0

    async def _read(self, path: str) -> str:
        data, cut = await asyncio.to_thread(self.sandbox.copy_out, self.container_id, path, 4 * 1024 * 1024)
        if b"\0" in data[:8192]:
            raise ToolError(f"{path} looks binary ({len(data)} bytes)")
        text = data.decode("utf-8", errors="replace")
        return text + ("\n[file cut at 4 MiB]" if cut else "")

    async def _read_file(self, path: str, offset: int = 1, limit: int | None = None) -> tuple[str, bool]:
        lines = (await self._read(path)).splitlines()
        start = max(1, int(offset))
        end = len(lines) if limit is None else min(len(lines), start - 1 + max(0, int(limit)))
        numbered = [f"{i:>6}\t{lines[i - 1]}" for i in range(start, end + 1)]
        if not lines:
            return f"{path} is empty", True
        return "\n".join(numbered), True

    async def _write_file(self, path: str, content: str) -> tuple[str, bool]:
        if not isinstance(content, str):
            raise ToolError("content must be a string")
        data = content.encode()
        mode = await asyncio.to_thread(self.sandbox.file_mode, self.container_id, path)
        await asyncio.to_thread(self.sandbox.copy_in, self.container_id, path, data, self.uid, self.gid,
                                mode or 0o644)
        return f"wrote {len(data)} bytes to {path}", True

    async def _edit_file(self, path: str, old_string: str, new_string: str) -> tuple[str, bool]:
        if not old_string:
            raise ToolError("old_string must not be empty")
        text = await self._read(path)
        count = text.count(old_string)
        if count == 0:
            raise ToolError(f"old_string not found in {path}")
        if count > 1:
            raise ToolError(f"old_string occurs {count} times in {path}; give more context so it is unique")
        await self._write_file(path, text.replace(old_string, new_string, 1))
        return f"edited {path}", True

    async def _list_files(self, path: str = ".", depth: int = 3) -> tuple[str, bool]:
        command = (
            f"find {shlex.quote(path)} -mindepth 1 -maxdepth {max(1, int(depth))} "
            "-not -path '*/.*' -not -name '.*' | LC_ALL=C sort | head -n 2000"
        )
        code, output, _ = await self._sh(command, 60)
        return output or "(no files)", code == 0

    async def _search(self, pattern: str, path: str = ".") -> tuple[str, bool]:
        quoted, where = shlex.quote(pattern), shlex.quote(path)
        command = (
            f"if command -v rg >/dev/null 2>&1; then rg -n --no-heading --color never -e {quoted} {where}; "
            f"else grep -rnE --exclude-dir=.git -e {quoted} {where}; fi | head -n 500"
        )
        _, output, _ = await self._sh(command, 60)
        return output or "(no matches)", True
