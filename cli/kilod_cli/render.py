"""Human output: a card, an attempt's log lines, diffstats (the board: boardview.py).

Only imported by verbs that print for people (`--json` never loads rich). Everything
from the daemon is printed as `Text`, never as markup: titles, prompts and tool
output are the agent's words and may contain `[brackets]`; what the agent wrote also
goes through `kilod_cli.text.visible`, so its escape sequences are shown, not obeyed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Iterable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from kilod_cli.boardtext import PIPED_WIDTH, STATE_STYLES
from kilod_cli.text import visible

# Which states exist comes from the daemon; their colours, the board's ages and the piped width are
# the board's (boardtext, which `ctl board` uses without rich).
KIND_WIDTH = 11  # len("tool_result")
RESULT_LINES = 5
LINE_CHARS = 200
ARGUMENT_CHARS = 300
DIFFSTAT_BAR = 40


def make_console(stderr: bool = False) -> Console:
    """A console that prints plain text when not on a terminal (and honours NO_COLOR)."""
    console = Console(stderr=stderr, markup=False, highlight=False, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, markup=False, highlight=False, emoji=False, width=PIPED_WIDTH)
    return console


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- a card and its attempts ---------------------------------------------


def _when(timestamp: Any) -> str:
    if not timestamp:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(timestamp)))


def cost_text(cost: Any) -> str:
    return "unknown" if cost is None else f"${float(cost):.4f}"


def checks_text(checks: Any) -> Text:
    """An attempt's checks summed up (`checks` of the API's attempt): '3 passed, 1 failed'."""
    if not isinstance(checks, dict) or not checks.get("total"):
        return Text("none run")
    parts = [f"{checks.get(key, 0)} {label}" for key, label in (("passed", "passed"), ("failed", "failed"),
                                                                 ("error", "errors")) if checks.get(key)]
    return Text(", ".join(parts) or f"{checks['total']} run", style="red" if checks.get("failing") else "green")


def duration_text(seconds: Any) -> str:
    """Running time as 1h 02m, 3m 05s or 42s (unknown before the attempt started)."""
    if seconds is None:
        return "—"
    whole = int(float(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def runs_text(attempt: dict[str, Any]) -> Text:
    """Each earlier run's summary (a follow-up starts a run; the run that ended keeps its summary)."""
    earlier = [str(s) for s in attempt.get("summaries") or []]
    if not earlier:
        return Text(str(attempt.get("run", 1)))
    lines = [f"run {n}: {visible(s) if s else '(no summary)'}" for n, s in enumerate(earlier, start=1)]
    return Text("\n".join([f"{attempt.get('run', len(earlier) + 1)} (earlier below)", *lines]))


def card_view(card: dict[str, Any], attempts: list[dict[str, Any]]) -> RenderableType:
    """Header of the card, then its attempts compared side by side (one column each)."""
    base = str(card.get("base_ref") or "")
    if card.get("base_commit"):
        base += f" @ {str(card['base_commit'])[:12]}"
    header = key_value_lines({
        "title": card.get("title"),
        "card": card.get("id"),
        "column": card.get("column"),
        "repo": card.get("repo"),
        "base": base,
        "network": "yes" if card.get("network") else "no",
        "created": _when(card.get("created_at")),
        **({"archived": _when(card["archived_at"])} if card.get("archived_at") else {}),
    })
    prompt = Text(visible(str(card.get("prompt") or "")))

    attempts_table = Table()
    attempts_table.add_column("", style="bold", no_wrap=True)
    for attempt in attempts:
        attempts_table.add_column(visible(str(attempt["id"])), overflow="fold")
    rows: list[tuple[str, list[Text]]] = [
        ("model", [Text(visible(str(a["model"]))) for a in attempts]),
        ("agent", [Text(visible(str(a.get("agent") or "builtin"))) for a in attempts]),
        ("state", [state_text(visible(str(a["state"]))) for a in attempts]),
        ("step", [Text(str(a.get("step", ""))) for a in attempts]),
        ("steps", [Text(str(a.get("steps", 0))) for a in attempts]),
        ("tool calls", [Text(str(a.get("tool_calls", 0))) for a in attempts]),
        ("tokens", [Text(f"{a.get('tokens_in', 0):,} in / {a.get('tokens_out', 0):,} out") for a in attempts]),
        ("cost", [Text(cost_text(a.get("cost_usd"))) for a in attempts]),
        ("checks", [checks_text(a.get("checks")) for a in attempts]),
        ("running", [Text(duration_text(a.get("running_seconds"))) for a in attempts]),
        ("branch", [Text(visible(str(a.get("branch") or "—"))) for a in attempts]),
        ("worktree", [Text(visible(str(a.get("worktree") or "—"))) for a in attempts]),
        ("started", [Text(_when(a.get("started_at"))) for a in attempts]),
        ("finished", [Text(_when(a.get("finished_at"))) for a in attempts]),
        ("summary", [Text(visible(str(a.get("summary") or "—"))) for a in attempts]),
        ("runs", [runs_text(a) for a in attempts]),
        ("error", [Text(visible(str(a["error"])), style="red") if a.get("error") else Text("—") for a in attempts]),
    ]
    for label, values in rows:
        attempts_table.add_row(label, *values)
    return Group(*header, Text(""), Text("prompt", style="bold"), prompt, Text(""),
                 Text("attempts", style="bold"), attempts_table)


def key_value_lines(values: dict[str, Any]) -> list[Text]:
    """`key  value` lines with the values aligned (plain lines: nothing padded at the end)."""
    width = max((len(key) for key in values), default=0)
    lines = []
    for key, value in values.items():
        if value is None:
            shown = "—"
        elif isinstance(value, (dict, list)):
            shown = json.dumps(value)
        else:
            shown = str(value)
        line = Text(f"{key:<{width}}  ", style="bold")
        line.append(visible(shown), style="")
        lines.append(line)
    return lines


# -- an attempt's events -------------------------------------------------


def _clock(timestamp: Any) -> str:
    return time.strftime("%H:%M:%S", time.localtime(float(timestamp or 0)))


def _compact_arguments(arguments: Any) -> str:
    """Tool arguments as one line of JSON (the daemon sends them as a JSON string)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return shorten(" ".join(arguments.split()), ARGUMENT_CHARS)
    return shorten(json.dumps(arguments, ensure_ascii=False), ARGUMENT_CHARS)


def _indented(text: str, style: str = "") -> Text:
    lines = text.splitlines()
    shown = lines[:RESULT_LINES]
    block = Text()
    for line in shown:
        block.append("\n" + " " * (9 + KIND_WIDTH + 1) + shorten(line, LINE_CHARS), style=style)
    if len(lines) > len(shown):
        more = len(lines) - len(shown)
        block.append("\n" + " " * (9 + KIND_WIDTH + 1) + f"… {more} more line{'s' if more > 1 else ''}",
                     style="dim")
    return block


def event_text(event: dict[str, Any], resting: Collection[str] = frozenset()) -> Text:
    """One event as a log line (plus indented lines for multi-line content); a move into one of
    the `resting` states (the daemon's, see kilod_cli.meta) is shown in capitals."""
    kind = str(event.get("kind", "?"))
    payload: dict[str, Any] = event.get("payload") or {}
    line = Text(f"{_clock(event.get('time'))} ", style="dim")
    line.append(f"{kind:<{KIND_WIDTH}} ", style="bold" if kind == "state" else "")
    if kind == "state":
        target = str(payload.get("to", "?"))
        origin = payload.get("from")
        if origin:
            line.append_text(state_text(str(origin)))
            line.append(" → ")
        line.append(target.upper() if target in resting else target, style=STATE_STYLES.get(target, "bold"))
        if payload.get("error"):
            line.append(f"  {visible(str(payload['error']))}", style="red")
    elif kind == "message":
        content = visible(str(payload.get("content") or "")).strip()
        first, _, rest = content.partition("\n")
        line.append(shorten(first, LINE_CHARS))
        meta = [f"step {payload['step']}"] if payload.get("step") is not None else []
        if payload.get("tokens_in") is not None:
            meta.append(f"{payload['tokens_in']} in / {payload.get('tokens_out', 0)} out tokens")
        if meta:
            line.append(("  " if first else "") + f"({', '.join(meta)})", style="dim")
        if rest:
            line.append_text(_indented(rest))
    elif kind == "tool_call":
        line.append(visible(str(payload.get("name", "?"))), style="cyan")
        line.append("  " + visible(_compact_arguments(payload.get("arguments", ""))))
    elif kind == "tool_result":
        ok = payload.get("ok", True)
        line.append(visible(str(payload.get("name", "?"))), style="cyan")
        line.append("  ok" if ok else "  error", style="green" if ok else "red")
        line.append_text(_indented(visible(str(payload.get("output") or "")), style="" if ok else "red"))
    elif kind == "log":
        line.append(visible(str(payload.get("message", ""))), style="dim")
    elif kind == "output":
        return output_text(event)
    elif kind == "check":
        status = str(payload.get("status") or "?")
        line.append(f"{visible(str(payload.get('name') or payload.get('command') or '?'))} ", style="cyan")
        line.append(status, style="green" if status == "passed" else "red")
        facts = ["timed out"] if payload.get("timed_out") else []
        if payload.get("exit_code") is not None:
            facts.append(f"exit {payload['exit_code']}")
        if isinstance(payload.get("duration"), (int, float)):
            facts.append(f"{float(payload['duration']):.1f} s")
        line.append(f"  ({', '.join(facts)})" if facts else "", style="dim")
        if payload.get("command") and payload.get("command") != payload.get("name"):
            line.append(f"  $ {visible(str(payload['command']))}", style="dim")
        if status != "passed":  # a failure's last lines say why; a pass's output was shown live
            tail = str(payload.get("output_tail") or "").rstrip("\n").splitlines()[-RESULT_LINES:]
            line.append_text(_indented(visible("\n".join(tail)), style="red"))
    else:
        line.append(visible(_compact_arguments(payload)))
    return line


def output_label(payload: dict[str, Any]) -> str:
    """Whose output an `output` event carries: `setup`, or `check NAME` (the command when a check has no name)."""
    step = str(payload.get("step") or "command")
    if step == "checks":
        return f"check {payload.get('name') or payload.get('command') or '?'}"
    return step


def _terminal_line(line: str) -> str:
    """What a terminal would show of a line: a carriage return starts it again (progress counters)."""
    line = line.rstrip("\r")
    return line.rsplit("\r", 1)[-1]


def output_text(event: dict[str, Any]) -> Text:
    """An `output` event: each line of a running command's output, prefixed by its time and whose it is."""
    payload: dict[str, Any] = event.get("payload") or {}
    prefix = f"{_clock(event.get('time'))} {'output':<{KIND_WIDTH}} {visible(output_label(payload))} │ "
    text = str(payload.get("text") or "")
    body = text[:-1] if text.endswith("\n") else text
    lines = [_terminal_line(line) for line in body.split("\n")] if text else []
    block = Text()
    for line in lines:
        if block:
            block.append("\n")
        block.append(prefix, style="dim")
        block.append(visible(line))
    if payload.get("cut"):
        if block:
            block.append("\n")
        block.append(prefix, style="dim")
        block.append(f"… {visible(str(payload.get('message') or 'output cut'))}", style="yellow")
    return block


# -- diffstat ------------------------------------------------------------


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def diffstat_lines(diffstat: dict[str, Any]) -> list[Text]:
    """Like `git diff --stat`: one line per file with a +/- bar, then the totals."""
    files: list[dict[str, Any]] = diffstat.get("files") or []
    if not files:
        return [Text(" (no changes)", style="dim")]
    path_width = max(len(str(f["path"])) for f in files)
    totals = [0 if f.get("binary") else int(f.get("added") or 0) + int(f.get("deleted") or 0) for f in files]
    count_width = max(len(str(t)) for t in totals)
    largest = max(totals)
    scale = min(1.0, DIFFSTAT_BAR / largest) if largest else 1.0
    lines: list[Text] = []
    for stat, total in zip(files, totals, strict=True):
        line = Text(f" {stat['path']!s:<{path_width}} | ")
        if stat.get("binary"):
            line.append("Bin")
        else:
            added, deleted = int(stat.get("added") or 0), int(stat.get("deleted") or 0)
            plus = round(added * scale) or (1 if added else 0)
            minus = round(deleted * scale) or (1 if deleted else 0)
            line.append(f"{total:>{count_width}}" + (" " if plus or minus else ""))
            line.append("+" * plus, style="green")
            line.append("-" * minus, style="red")
        lines.append(line)
    summary = [_plural(len(files), "file changed", "files changed")]
    added_total, deleted_total = int(diffstat.get("added") or 0), int(diffstat.get("deleted") or 0)
    if added_total or not deleted_total:
        summary.append(_plural(added_total, "insertion(+)", "insertions(+)"))
    if deleted_total:
        summary.append(_plural(deleted_total, "deletion(-)", "deletions(-)"))
    lines.append(Text(" " + ", ".join(summary)))
    return lines


def print_lines(console: Console, lines: Iterable[Text]) -> None:
    for line in lines:
        console.print(line, soft_wrap=True)
