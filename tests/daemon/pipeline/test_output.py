"""A running command's live output as `output` events: batched, whole lines, bounded, in order (real store)."""

from __future__ import annotations

import asyncio
from typing import Any

from kilod.domain import Attempt, EventKind
from kilod.lifecycle import Lifecycle
from kilod.pipeline.output import BATCH_BYTES, LiveOutput
from kilod.store import Store

LABEL = {"step": "setup", "command": "make it"}




def outputs(store: Store, attempt_id: str) -> list[dict[str, Any]]:
    return [e.payload for e in store.events_of(attempt_id) if e.kind == EventKind.OUTPUT]


async def feed_from_a_thread(live: LiveOutput, pieces: list[str]) -> None:
    """As the exec does: every piece from a worker thread, then the end."""
    await asyncio.to_thread(lambda: [live.feed(piece) for piece in pieces])
    await live.close()


async def test_a_burst_of_lines_becomes_few_events_of_whole_lines(store: Store, lifecycle: Lifecycle,
                                                                 attempt: Attempt) -> None:
    lines = [f"line {n} of a chatty build\n" for n in range(2000)]
    # written in pieces that split lines, as a pipe delivers them
    text = "".join(lines)
    pieces = [text[i:i + 333] for i in range(0, len(text), 333)]
    live = LiveOutput(lifecycle, attempt.id, LABEL, limit=10**7)
    await feed_from_a_thread(live, pieces)

    events = outputs(store, attempt.id)
    assert "".join(e["text"] for e in events) == text  # all of it, in order
    assert len(events) < len(lines) / 20  # batched, not one event per write
    assert all(len(e["text"]) <= BATCH_BYTES and e["text"].endswith("\n") for e in events)  # no line split
    assert all(e["step"] == "setup" and e["command"] == "make it" and not e.get("cut") for e in events)
    assert (live.seen, live.recorded, live.cut) == (len(text), len(text), False)


async def test_a_quiet_partial_line_is_shown_while_the_command_still_runs(store: Store, lifecycle: Lifecycle,
                                                                         attempt: Attempt) -> None:
    live = LiveOutput(lifecycle, attempt.id, LABEL, limit=10**7)
    live.feed("ready\nwaiting for input: ")
    while len("".join(e["text"] for e in outputs(store, attempt.id))) < len("ready\nwaiting for input: "):
        await asyncio.sleep(0.05)  # the command has not ended: only the timer can have sent it
    live.feed("yes\n")
    await live.close()
    assert "".join(e["text"] for e in outputs(store, attempt.id)) == "ready\nwaiting for input: yes\n"


async def test_output_past_the_limit_is_cut_once_and_said(store: Store, lifecycle: Lifecycle,
                                                          attempt: Attempt) -> None:
    text = "".join(f"{n:06d} é chatty\n" for n in range(50_000))  # ~800 KB, two-byte characters in it
    pieces = [text[i:i + 4000] for i in range(0, len(text), 4000)]
    live = LiveOutput(lifecycle, attempt.id, LABEL, limit=20_000)
    await feed_from_a_thread(live, pieces)

    events = outputs(store, attempt.id)
    recorded = "".join(e["text"] for e in events)
    assert len(recorded.encode()) <= 20_000 and text.startswith(recorded) and recorded.endswith("\n")
    assert [bool(e.get("cut")) for e in events] == [False] * (len(events) - 1) + [True]  # the last says it
    assert "20,000 bytes" in events[-1]["message"]
    assert live.cut and live.seen == len(text.encode())


async def test_events_are_stored_in_the_order_written(store: Store, lifecycle: Lifecycle, attempt: Attempt) -> None:
    live = LiveOutput(lifecycle, attempt.id, LABEL, limit=10**7)
    await feed_from_a_thread(live, [f"{n}\n" + "x" * 500 + "\n" for n in range(300)])
    events = outputs(store, attempt.id)
    assert len(events) > 10  # several group-committed writes were in flight together
    recorded = "".join(e["text"] for e in events).split("\n")
    assert [int(n) for n in recorded[0::2] if n] == list(range(300))
