"""Running a repository's own command (setup, checks) in the attempt's container, its output shown live."""

from __future__ import annotations

import asyncio
import time
from typing import Literal, TypedDict

from kilod.container_guard import removed
from kilod.pipeline.output import LiveOutput
from kilod.sandbox.base import Sandbox

OUTPUT_TAIL = 4000  # characters of setup/check output kept


class CommandResult(TypedDict):
    status: Literal["passed", "failed", "error"]
    exit_code: int
    timed_out: bool
    duration: float
    output_tail: str
    output_bytes: int     # what the command wrote
    output_cut: bool      # its live output passed the limit: the `output` events stop short, the tail is whole


async def run_command(sandbox: Sandbox, container_id: str, command: str, timeout: float,
                      live: LiveOutput | None = None) -> CommandResult:
    """passed, failed (non-zero exit) or error (could not run, timed out); with `live`, its output as it comes."""
    started = time.monotonic()
    try:
        result = await asyncio.to_thread(sandbox.exec, container_id, command, timeout,
                                         on_output=live.feed if live is not None else None)
    except asyncio.CancelledError:
        if live is not None:
            live.abandon()
        raise
    except Exception:
        if live is not None:
            await live.close()  # what it wrote before the failure is still worth reading
        raise
    if live is not None:
        await live.close()  # stored before the end-of-command event the caller records
    if not await asyncio.to_thread(sandbox.is_running, container_id):  # killed with its container, not failed
        raise removed(container_id)
    status: Literal["passed", "failed", "error"]
    if result.timed_out:
        status = "error"
    elif result.exit_code in (126, 127):
        status = "error"  # not found / not executable: the command could not run at all
    else:
        status = "passed" if result.exit_code == 0 else "failed"
    return {
        "status": status,
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "duration": round(time.monotonic() - started, 3),
        "output_tail": result.output[-OUTPUT_TAIL:],
        "output_bytes": len(result.output.encode("utf-8", "replace")),
        "output_cut": live is not None and live.cut,
    }
