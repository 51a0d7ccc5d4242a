"""The daemon's log: JSON lines where a machine reads stderr, readable text on a terminal.

`KILOD_LOG_FORMAT` is `json`, `text` or `auto` (the default: JSON unless stderr is a
terminal); `KILOD_LOG_LEVEL` is a level name (default `INFO`). A JSON line holds
`time` (UTC, ISO 8601), `level`, `logger`, `message`, the `card_id`, `attempt_id` and
`model` of the record when a call passed them (`log.info(..., extra={"card_id": ...})`),
and `exception` when there is one. Every record goes through the root logger's one
handler: libraries that bring their own stderr handler (litellm) are brought under it,
so no line of another shape gets in between.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

FORMAT_ENV = "KILOD_LOG_FORMAT"
LEVEL_ENV = "KILOD_LOG_LEVEL"
FORMATS = ("auto", "json", "text")
# Record attributes that become fields of their own, in this order.
CONTEXT_FIELDS = ("card_id", "attempt_id", "model")
# Loggers that add a handler of their own at import; their records go to the root's instead.
SELF_HANDLING_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _context(record: logging.LogRecord) -> dict[str, Any]:
    values = {name: getattr(record, name, None) for name in CONTEXT_FIELDS}
    return {name: value for name, value in values.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [card=… attempt=… model=…]` for people."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context(record)
        if not context:
            return text
        fields = " ".join(f"{name.removesuffix('_id')}={value}" for name, value in context.items())
        first, newline, rest = text.partition("\n")
        return f"{first} [{fields}]{newline}{rest}"


class _RootOnlyLogger(logging.Logger):
    """A logger that keeps no handlers of its own: its records go up to the root's."""

    def addHandler(self, hdlr: logging.Handler) -> None:
        return None


def _bring_under_root(name: str) -> None:
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = True
    # The library adds its handler when it is imported, possibly later than this: a
    # logger of this class ignores that. The instance is kept (others may hold it).
    logger.__class__ = _RootOnlyLogger


def resolve_format(value: str | None, stream: TextIO) -> tuple[str, str | None]:
    """The format to use and, for a value that is not one, what to warn about."""
    wanted = (value or "auto").strip().lower()
    problem = None
    if wanted not in FORMATS:
        problem = f"{FORMAT_ENV}={value!r} is not one of {', '.join(FORMATS)}; using auto"
        wanted = "auto"
    if wanted == "auto":
        isatty = getattr(stream, "isatty", None)
        wanted = "text" if isatty is not None and isatty() else "json"
    return wanted, problem


def resolve_level(value: str | None) -> tuple[int, str | None]:
    name = (value or "INFO").strip().upper()
    level = logging.getLevelNamesMapping().get(name)
    if level is None:
        return logging.INFO, f"{LEVEL_ENV}={value!r} is not a level name (DEBUG, INFO, WARNING, ERROR); using INFO"
    return level, None


def configure_logging(stream: TextIO | None = None, fmt: str | None = None, level: str | None = None) -> str:
    """Send every log record to `stream` (stderr) in the chosen format; returns `json` or `text`.

    `fmt` and `level` default to `KILOD_LOG_FORMAT` and `KILOD_LOG_LEVEL`. A bad value
    falls back to the default with a warning in the log, never stops the daemon.
    """
    target = stream if stream is not None else sys.stderr
    chosen, format_problem = resolve_format(fmt if fmt is not None else os.environ.get(FORMAT_ENV), target)
    threshold, level_problem = resolve_level(level if level is not None else os.environ.get(LEVEL_ENV))

    handler = logging.StreamHandler(target)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in SELF_HANDLING_LOGGERS:
        _bring_under_root(name)
    logging.captureWarnings(True)
    _log_uncaught_exceptions()

    log = logging.getLogger("kilod.logs")
    for problem in (format_problem, level_problem):
        if problem:
            log.warning(problem)
    return chosen


def _log_uncaught_exceptions() -> None:
    """A traceback that would go to stderr raw is logged as one record instead."""
    log = logging.getLogger("kilod")

    def on_exception(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        log.critical("uncaught exception", exc_info=(kind, value, tb))

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "?"
        log.error("uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = on_exception
    threading.excepthook = on_thread_exception
