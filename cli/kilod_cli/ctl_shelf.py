"""`kilod ctl archive | unarchive | delete` (cards off the board) and `pause | resume` (an attempt's
agent held and let go). Thin verbs over the daemon's routes; the daemon judges every state."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kilod_cli.client import CliError, segment
from kilod_cli.text import visible
from kilod_cli.verbs import (
    ATTEMPT_ID,
    EXIT_FAILURE,
    EXIT_OK,
    Subparsers,
    add_attempt_argument,
    add_json_option,
    client_for,
    print_json,
)


def card_id(value: str) -> str:
    if not value or ATTEMPT_ID.match(value) or any(c in value for c in "-/ \t\n"):
        raise argparse.ArgumentTypeError(f"'{value}' is not a card id (like 3fa9c2d1; an attempt id names "
                                         "one attempt, not the card)")
    return value


def _say(message: str) -> None:
    print(f"kilod: {message}", file=sys.stderr)


def card_path(card: str, *rest: str) -> str:
    return "/".join(("/v1/cards", segment(card), *rest))


def cmd_archive(args: argparse.Namespace) -> int:
    card = client_for(args).post(card_path(args.card, "archive"))
    if args.json:
        print_json(card)
        return EXIT_OK
    print(f"{card['id']} archived")
    _say(f"card {visible(str(card['id']))} is off the board (kept; 'kilod ctl unarchive {card['id']}' "
         "puts it back)")
    return EXIT_OK


def cmd_unarchive(args: argparse.Namespace) -> int:
    card = client_for(args).post(card_path(args.card, "unarchive"))
    if args.json:
        print_json(card)
        return EXIT_OK
    print(f"{card['id']} {card.get('column') or 'on the board'}")
    return EXIT_OK


def what_delete_discards(card: dict[str, Any]) -> list[str]:
    """Lines naming what deleting the card throws away, and what it keeps (as the daemon's shelf does:
    every attempt not approved nor already discarded is discarded; approved branches stay)."""
    lines = [f"card {visible(str(card['id']))} {visible(repr(str(card.get('title') or '')))} "
             f"({visible(str(card.get('repo') or ''))})"]
    for attempt in card.get("attempts") or []:
        state = str(attempt.get("state"))
        name = f"{visible(str(attempt['id']))} {visible(str(attempt.get('model') or ''))} ({visible(state)})"
        if state == "approved":
            lines.append(f"  keeps    {name}: its branch {visible(str(attempt.get('branch') or ''))} stays")
        elif state == "discarded":
            lines.append(f"  gone     {name}: already discarded")
        else:
            lines.append(f"  discards {name}: its container, worktree and branch "
                         f"{visible(str(attempt.get('branch') or ''))}" + (" (its work stops)" if state in (
                             "queued", "starting", "running", "paused") else ""))
    lines.append("  and the card's log, comments and checks")
    return lines


def ask(question: str) -> bool:
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def cmd_delete(args: argparse.Namespace) -> int:
    client = client_for(args)
    if not args.yes:
        card = client.get(card_path(args.card))  # 404 before any question
        if not sys.stdin.isatty():
            raise CliError(f"not a terminal to ask on: 'kilod ctl show {args.card}' lists what deleting discards; "
                           "pass --yes to delete")
        print("\n".join(["deleting:", *what_delete_discards(card)]), file=sys.stderr)
        if not ask(f"Delete card {args.card}?"):
            _say("nothing deleted")
            return EXIT_FAILURE
    deleted = client.request("DELETE", card_path(args.card))
    if args.json:
        print_json(deleted)
        return EXIT_OK
    print(f"{deleted['card_id']} deleted")
    discarded = deleted.get("discarded") or []
    kept = deleted.get("kept_branches") or []
    _say(f"discarded {', '.join(map(visible, discarded)) if discarded else 'no attempts'}"
         + (f"; kept branches {', '.join(map(visible, kept))}" if kept else ""))
    return EXIT_OK


def attempt_path(attempt_id: str, action: str) -> str:
    return f"/v1/attempts/{segment(attempt_id)}/{action}"


def cmd_pause(args: argparse.Namespace) -> int:
    attempt = client_for(args).post(attempt_path(args.attempt, "pause"))
    if args.json:
        print_json(attempt)
        return EXIT_OK
    print(f"{attempt['id']} {attempt['state']}")
    _say(f"{args.attempt} stops after its current tool call and waits, container up; "
         f"'kilod ctl resume {args.attempt} [MESSAGE]' lets it go on")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    body = {"text": " ".join(args.text)} if args.text else {}
    attempt = client_for(args).post(attempt_path(args.attempt, "resume"), body)
    if args.json:
        print_json(attempt)
        return EXIT_OK
    print(f"{attempt['id']} {attempt['state']}")
    return EXIT_OK


def register(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    archive = verbs.add_parser(
        "archive", parents=[common], help="take a card off the board (kept; unarchive puts it back)",
        description="Hides the card from the board and its counts; nothing is discarded. The daemon refuses "
                    "(exit 1) while an attempt is live or in review: decide those first.")
    unarchive = verbs.add_parser("unarchive", parents=[common], help="put an archived card back on the board")
    for parser_, handler in ((archive, cmd_archive), (unarchive, cmd_unarchive)):
        parser_.add_argument("card", metavar="CARD", type=card_id, help="a card id, like 3fa9c2d1")
        add_json_option(parser_, "print the card as JSON")
        parser_.set_defaults(handler=handler)

    delete = verbs.add_parser(
        "delete", parents=[common], help="delete a card: its unapproved attempts are discarded first",
        description="Discards every attempt that is neither approved nor already discarded (stopping live "
                    "ones: container, worktree and branch), then removes the card and its log. Approved "
                    "attempts' branches stay in the repository. On a terminal it names what it will discard "
                    "and asks; elsewhere it needs --yes.")
    delete.add_argument("card", metavar="CARD", type=card_id, help="a card id, like 3fa9c2d1")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask")
    add_json_option(delete, "print the daemon's answer (card_id, discarded, kept_branches) as JSON")
    delete.set_defaults(handler=cmd_delete)

    pause = verbs.add_parser(
        "pause", parents=[common], help="hold a running attempt after its current tool call",
        description="The agent stops after its current tool call and waits in 'paused' with its container up "
                    "(look around with ctl shell or ctl diff; change files if you like). Prints the attempt "
                    "and its state; the daemon answers before the agent has stopped.")
    add_attempt_argument(pause)
    add_json_option(pause, "print the attempt as JSON")
    pause.set_defaults(handler=cmd_pause)

    resume = verbs.add_parser(
        "resume", parents=[common], help="let a paused attempt go on, optionally with a message",
        description="The agent continues where it stopped, told what a person changed in the worktree "
                    "meanwhile and MESSAGE if given.")
    add_attempt_argument(resume)
    resume.add_argument("text", nargs="*", metavar="MESSAGE", help="what to tell the agent (words are joined)")
    add_json_option(resume, "print the attempt as JSON")
    resume.set_defaults(handler=cmd_resume)
