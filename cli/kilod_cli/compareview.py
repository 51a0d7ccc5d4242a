"""`kilod ctl compare` for people: one table with a row per attempt and the best value in each
column marked (a column per attempt when the terminal is too narrow for that), the files
each attempt touched and where they overlap, the card's totals; and, with `--diff FILE`,
that file's diff for every attempt in turn.

Only imported to draw for a person. Unknown values (a discarded attempt's files, a cost
with no known price) are shown as "unknown", never as 0. Paths, models and stop reasons
go through `kilod_cli.text`: what the agent wrote is shown, never obeyed by the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from kilod_cli.compare import AttemptFile
from kilod_cli.render import cost_text, state_text
from kilod_cli.text import pieces

BEST_STYLE = "bold green"
BEST_MARK = "★"
FAILING_STYLE = "bold red"
UNKNOWN = "unknown"
NONE = "—"
UNSAFE_STYLE = "reverse"
TOUCHED = "●"


def shown(value: str, style: str = "") -> Text:
    """Daemon- or agent-written `value` as Text, its unsafe characters shown as (reversed) stand-ins."""
    text = Text()
    for piece, unsafe in pieces(value):
        start = len(text)
        text.append(piece, style)
        if unsafe:
            text.stylize(UNSAFE_STYLE, start, len(text))
    return text


def duration(seconds: float) -> str:
    """Wall time: 8.2s, 3m 05s, 1h 02m."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def count(value: Any) -> str:
    return UNKNOWN if value is None else f"{int(value):,}"


def marked(text: Text, best: bool) -> Text:
    """The cell as it is, or in the best style with a star."""
    if best:
        text.stylize(BEST_STYLE)
        text.append(" " + BEST_MARK, BEST_STYLE)
    return text


def _files(row: dict[str, Any]) -> Text:
    return Text(count(row.get("files_changed")), "dim" if row.get("files_changed") is None else "")


def _lines(row: dict[str, Any]) -> Text:
    added, deleted = row.get("additions"), row.get("deletions")
    if added is None and deleted is None:
        return Text(UNKNOWN, "dim")
    cell = Text()
    cell.append(f"+{int(added or 0):,}", "green")
    cell.append(" ")
    cell.append(f"-{int(deleted or 0):,}", "red")
    return cell


def _cost(row: dict[str, Any]) -> Text:
    cost = row.get("cost_usd")
    if cost is None and not row.get("steps"):
        return Text(NONE, "dim")  # no model call yet: nothing spent, nothing unknown
    return Text(cost_text(cost), "dim" if cost is None else "")


def _wall(row: dict[str, Any]) -> Text:
    seconds = row.get("wall_seconds")
    return Text(NONE, "dim") if seconds is None else Text(duration(float(seconds)))


def _stop(row: dict[str, Any]) -> Text:
    reason = row.get("stop_reason")
    return Text(NONE, "dim") if not reason else shown(str(reason), "yellow")


def checks_cell(row: dict[str, Any], best: dict[str, list[str]]) -> Text:
    """`passed✓ failed✗`, then how many could not run (errors), then "failing" in red; "—" when none ran.

    The daemon counts errors among `checks_failed`; here they are shown apart.
    """
    passed, failed = row.get("checks_passed"), row.get("checks_failed")
    if passed is None and failed is None:
        return Text(NONE, "dim")
    attempt = row.get("attempt_id")
    errors = int(row.get("checks_error") or 0)
    best_passed = attempt in best.get("checks_passed", [])
    best_failed = attempt in best.get("checks_failed", [])
    only_failed = int(failed or 0) - errors
    cell = Text()
    cell.append(f"{passed or 0}✓", BEST_STYLE if best_passed else "")
    cell.append(" ")
    cell.append(f"{only_failed}✗", BEST_STYLE if best_failed else ("red" if only_failed else ""))
    if errors:
        cell.append(f" {errors} error{'s' if errors != 1 else ''}", "red")
    if row.get("checks_failing"):
        cell.append(" failing", FAILING_STYLE)
    if best_passed or best_failed:
        cell.append(" " + BEST_MARK, BEST_STYLE)
    return cell


Cell = Callable[[dict[str, Any]], Text]


@dataclass(frozen=True)
class Metric:
    """One compare column: its header, the `best` keys that mark its cells, and how a row's cell reads."""

    header: str
    best_keys: tuple[str, ...]
    cell: Cell
    number: bool = True

    def text(self, row: dict[str, Any], best: dict[str, list[str]]) -> Text:
        attempt = row.get("attempt_id")
        return marked(self.cell(row), any(attempt in best.get(key, []) for key in self.best_keys))


METRICS = [
    Metric("files", ("files_changed",), _files),
    Metric("lines", ("additions", "deletions"), _lines),
    Metric("checks", (), lambda row: Text(), number=False),  # drawn by checks_cell: each count marked apart
    Metric("steps", ("steps",), lambda row: Text(count(row.get("steps")))),
    Metric("tool calls", ("tool_calls",), lambda row: Text(count(row.get("tool_calls")))),
    Metric("tokens", ("tokens",), lambda row: Text(count(row.get("tokens")))),
    Metric("cost", ("cost_usd",), _cost),
    Metric("time", ("wall_seconds",), _wall),
]


def _cells(row: dict[str, Any], best: dict[str, list[str]]) -> list[Text]:
    """A row's cells in table order: attempt, model, state, the metrics, stop reason."""
    metrics = [checks_cell(row, best) if metric.header == "checks" else metric.text(row, best)
               for metric in METRICS]
    agent = str(row.get("agent") or "builtin")
    model = str(row.get("model") or "?")
    # a row per agent x model: an agent CLI's rows say which agent ran the model
    return [shown(str(row.get("attempt_id")), "cyan"), shown(model if agent == "builtin" else f"{agent}:{model}"),
            state_text(str(row.get("state") or "?")), *metrics, _stop(row)]


HEADERS = ["attempt", "model", "state", *(metric.header for metric in METRICS), "stop reason"]
# Columns that fold (model, stop reason), and how narrow they may get before the table turns.
FOLDING = {1, len(HEADERS) - 1}
FOLDED_WIDTH = 16
COLUMN_GAP = 2  # SIMPLE_HEAD's padding between two columns


def table_width(cells: list[list[Text]]) -> int:
    """The narrowest a row-per-attempt table can be without cutting a cell (folding columns aside)."""
    widths = [len(header) for header in HEADERS]
    for row in cells:
        widths = [max(width, cell.cell_len) for width, cell in zip(widths, row, strict=True)]
    widths = [min(width, FOLDED_WIDTH) if index in FOLDING else width for index, width in enumerate(widths)]
    return sum(widths) + COLUMN_GAP * (len(widths) - 1)


def compare_table(cells: list[list[Text]]) -> Table:
    """A row per attempt."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("attempt", no_wrap=True)
    table.add_column("model", overflow="fold")
    table.add_column("state", no_wrap=True)
    for metric in METRICS:
        table.add_column(metric.header, justify="right" if metric.number else "left", no_wrap=True)
    table.add_column("stop reason", overflow="fold")
    for row in cells:
        table.add_row(*row)
    return table


def transposed_table(cells: list[list[Text]]) -> Table:
    """A column per attempt, for a terminal too narrow for a row each."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("", style="bold", no_wrap=True)
    for row in cells:
        table.add_column(row[0], overflow="fold")
    for index, header in enumerate(HEADERS[1:], start=1):
        table.add_row(header, *(row[index] for row in cells))
    return table


def files_view(data: dict[str, Any]) -> list[RenderableType]:
    """A path-by-attempt matrix of the files each attempt touched, then the overlaps as `path: ids`."""
    rows: list[dict[str, Any]] = data.get("rows") or []
    files: dict[str, list[str]] = data.get("files") or {}
    overlap: list[str] = list(data.get("overlap") or [])
    unknown = [row for row in rows if row.get("files_changed") is None]  # changes gone
    parts: list[RenderableType] = [Text("files touched", style="bold")]
    if files:
        matrix = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        matrix.add_column("file", overflow="fold")
        for row in rows:
            matrix.add_column(shown(str(row.get("attempt_id"))), justify="center", no_wrap=True)
        for path, ids in files.items():
            marks = [Text("?", "dim") if row.get("files_changed") is None
                     else Text(TOUCHED if row.get("attempt_id") in ids else "") for row in rows]
            matrix.add_row(shown(path, "bold yellow" if path in overlap else ""), *marks)
        parts.append(matrix)
    elif not unknown:
        parts.append(Text("  no attempt changed a file", style="dim"))
    for row in unknown:
        line = Text("  ")
        line.append_text(shown(str(row.get("attempt_id")), "cyan"))
        line.append(f": {UNKNOWN} (the attempt is {row.get('state')}; its changes are gone)", "dim")
        parts.append(line)
    parts.append(Text(""))
    if overlap:
        parts.append(Text(f"overlap: {len(overlap)} file{'s' if len(overlap) != 1 else ''} changed by more "
                          "than one attempt", style="bold yellow"))
        for path in overlap:
            line = Text("  ")
            line.append_text(shown(path))
            line.append(": " + ", ".join(str(i) for i in files.get(path) or []))
            parts.append(line)
    else:
        parts.append(Text("overlap: none (no file was changed by more than one attempt)", style="dim"))
    return parts


def totals_lines(usage: dict[str, Any]) -> list[Text]:
    tokens_in, tokens_out = int(usage.get("tokens_in") or 0), int(usage.get("tokens_out") or 0)
    tokens = Text("tokens  ", style="bold")
    tokens.append(f"{tokens_in + tokens_out:,} ({tokens_in:,} in / {tokens_out:,} out)")
    cost = Text("cost    ", style="bold")
    known = usage.get("cost_usd")
    if known is None:
        if usage.get("cost_complete") is False:
            cost.append("unknown (no price known for these models)", "yellow")
        else:
            cost.append(f"{NONE} (no model call yet)", "dim")
    else:
        cost.append(cost_text(known))
        if usage.get("cost_complete") is False:
            cost.append(" + cost unknown for some attempts", "yellow")
    return [tokens, cost]


def compare_view(data: dict[str, Any], console: Console) -> Iterator[RenderableType]:
    """Renderables for the whole comparison, to print one after the other on `console`.

    A row per attempt; a column per attempt when that table would not fit the width.
    """
    heading = Text("card ", style="bold")
    heading.append_text(shown(str(data.get("card_id") or "?"), "cyan"))
    heading.append("  ")
    heading.append_text(shown(str(data.get("title") or ""), "bold"))
    yield heading
    rows = data.get("rows") or []
    if not rows:
        yield Text("no attempts", style="dim")
        return
    best: dict[str, list[str]] = data.get("best") or {}
    cells = [_cells(row, best) for row in rows]
    yield compare_table(cells) if table_width(cells) <= console.width else transposed_table(cells)
    if best:
        yield Text(f"{BEST_MARK} the best value among the attempts (fewest failed checks, steps, tool calls, "
                   "tokens, cost, time; most passed checks)", style="dim")
    yield Text("")
    yield from files_view(data)
    yield Text("")
    yield Text("card total", style="bold")
    yield from totals_lines(data.get("usage") or {})


def file_diffs_view(data: dict[str, Any], path: str, items: list[AttemptFile]) -> Iterator[RenderableType]:
    """FILE's diff in every attempt in turn: a rule naming the attempt and its model, then the file."""
    from kilod_cli.diffview import default_theme, file_view

    theme = default_theme()
    heading = shown(path, "bold")
    heading.append(f" in {len(items)} attempt{'s' if len(items) != 1 else ''} of card ")
    heading.append_text(shown(str(data.get("card_id") or "?"), "cyan"))
    yield heading
    for item in items:
        yield Text("")
        title = Text()
        title.append_text(shown(item.attempt_id, "bold cyan"))
        title.append("  ")
        title.append_text(shown(item.model, "bold"))
        yield Rule(title, align="left", style="dim")
        if item.file is not None:
            yield from file_view(item.file, theme)
        else:
            yield shown(f"  {item.missing}", "dim")
