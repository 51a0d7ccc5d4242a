"""`kilod ctl logs`: an attempt's events, replayed and (with -f) followed until it comes to rest.

`followup -f` follows the same way, from where the log stood before the follow-up.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from kilod_cli.client import Client, CliError, segment
from kilod_cli.verbs import EXIT_INTERRUPTED, EXIT_OK, Subparsers, add_json_option, client_for


def _state_of(event: dict[str, Any]) -> str | None:
    if event.get("kind") != "state":
        return None
    target = (event.get("payload") or {}).get("to")
    return str(target) if target is not None else None


def last_seq(client: Client, attempt_id: str) -> int:
    history: list[dict[str, Any]] = client.get(f"/v1/attempts/{segment(attempt_id)}/events")["events"]
    return max((int(e["seq"]) for e in history), default=0)


def attempt_events(client: Client, attempt_id: str, follow: bool, after: int = 0) -> Iterator[dict[str, Any]]:
    """The attempt's events (those after seq `after`); with `follow`, live ones too until it comes to rest.

    The history is read as JSON first: only its last state event says whether the
    attempt rests now (a `review` early in the log may have been followed by more work).
    """
    path = f"/v1/attempts/{segment(attempt_id)}/events"
    history: list[dict[str, Any]] = client.get(path + (f"?after={after}" if after else ""))["events"]
    yield from history
    if not follow:
        return
    resting = client.meta().resting_states
    states = [state for state in map(_state_of, history) if state is not None]
    if states and states[-1] in resting:
        return
    seen = max((int(e["seq"]) for e in history), default=after)
    for event in client.stream(path, last_event_id=seen):
        yield event
        if _state_of(event) in resting:
            return
    raise CliError(f"the event stream ended before attempt {attempt_id} came to rest (did the daemon stop?)")


def show_events(client: Client, events: Iterator[dict[str, Any]], as_json: bool, follow: bool) -> str | None:
    """Print events (NDJSON or log lines); returns the last state seen, if any.

    Log lines show a state the attempt rests in (review, failed, ...) in capitals, so
    they need the daemon's states: asked only once an event names a state.
    """
    state: str | None = None
    if as_json:
        for event in events:
            state = _state_of(event) or state
            print(json.dumps(event), flush=follow)
        return state
    from kilod_cli.render import event_text, make_console

    console = make_console()
    for event in events:
        moved_to = _state_of(event)
        state = moved_to or state
        resting = client.meta().resting_states if moved_to is not None else frozenset()
        console.print(event_text(event, resting), soft_wrap=True)
        if follow:
            console.file.flush()
    return state


def cmd_logs(args: argparse.Namespace) -> int:
    client = client_for(args)
    try:
        show_events(client, attempt_events(client, args.attempt, args.follow), args.json, args.follow)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


def register(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    logs = verbs.add_parser("logs", parents=[common], help="an attempt's events")
    logs.add_argument("attempt", metavar="ATTEMPT")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="follow live until the attempt comes to rest (review, failed, ...)")
    add_json_option(logs, "print NDJSON, one event per line")
    logs.set_defaults(handler=cmd_logs)
