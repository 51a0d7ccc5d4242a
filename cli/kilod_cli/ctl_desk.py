"""The review desk's verbs: diff, comment(s), followup, shell, open, approve/merge, compare, pick,
discard, cancel, retry. The work is in `desk.py` and `compare.py`, loaded only by the verb that runs."""

from __future__ import annotations

import argparse
import sys

from kilod_cli.ctl_logs import attempt_events, last_seq, show_events
from kilod_cli.verbs import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Subparsers,
    add_attempt_argument,
    add_json_option,
    client_for,
    location,
)


def cmd_diff(args: argparse.Namespace) -> int:
    from kilod_cli.desk import diff

    return diff(client_for(args), args.attempt, args.stat, args.json, use_pager=not args.no_pager)


def cmd_comment(args: argparse.Namespace) -> int:
    from kilod_cli.desk import comment

    path, line = args.location
    return comment(client_for(args), args.attempt, path, line, " ".join(args.text), args.json)


def cmd_comments(args: argparse.Namespace) -> int:
    from kilod_cli.desk import list_comments

    return list_comments(client_for(args), args.attempt, args.json)


def cmd_followup(args: argparse.Namespace) -> int:
    from kilod_cli.desk import follow_up

    client = client_for(args)
    # where the log stands before the follow-up: -f shows only what it sets off
    start = last_seq(client, args.attempt) if args.follow else 0
    attempt = follow_up(client, args.attempt, " ".join(args.text))
    print(f"{attempt['id']} {attempt['state']}", flush=True)
    if not args.follow:
        return EXIT_OK
    try:
        state = show_events(client, attempt_events(client, args.attempt, True, after=start), False, True)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if state in ("failed", "cancelled"):
        print(f"kilod: attempt {args.attempt} {state} (kilod ctl show {args.attempt})", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_shell(args: argparse.Namespace) -> int:
    from kilod_cli.desk_open import shell

    return shell(client_for(args), args.attempt, args.host)


def cmd_open(args: argparse.Namespace) -> int:
    from kilod_cli.desk_open import open_editor

    return open_editor(client_for(args), args.attempt)


def cmd_approve(args: argparse.Namespace) -> int:
    from kilod_cli.desk import approve

    return approve(client_for(args), args.attempt, args.message, args.merge, args.tree, args.json, args.yes)


def cmd_compare(args: argparse.Namespace) -> int:
    from kilod_cli.compare import compare

    return compare(client_for(args), args.card, args.json, args.diff, use_pager=not args.no_pager)


def cmd_pick(args: argparse.Namespace) -> int:
    from kilod_cli.compare import pick

    return pick(client_for(args), args.attempt, args.message, args.merge, args.json, args.yes)


def cmd_discard(args: argparse.Namespace) -> int:
    from kilod_cli.desk import discard

    return discard(client_for(args), args.attempt, args.json)


def cmd_cancel(args: argparse.Namespace) -> int:
    from kilod_cli.desk import cancel

    return cancel(client_for(args), args.attempt, args.json)


def cmd_retry(args: argparse.Namespace) -> int:
    from kilod_cli.desk import retry

    return retry(client_for(args), args.attempt, args.json)


def _register_reading(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    diff = verbs.add_parser(
        "diff", parents=[common], help="an attempt's changes, highlighted (through a pager on a terminal)",
        description="The attempt's worktree against its base commit, untracked files included. On a terminal: "
                    "each file's header (status, renames, mode changes, risk flags), then its hunks highlighted "
                    "in the file's language, through $PAGER (default 'less -R'; LESS=FRX unless LESS is set). "
                    "Piped: the daemon's unified diff, exactly (for git apply). FORCE_COLOR forces the "
                    "highlighted view.")
    add_attempt_argument(diff)
    diff.add_argument("--stat", action="store_true", help="a diffstat, like git diff --stat")
    diff.add_argument("--no-pager", action="store_true", help="print straight to the terminal")
    add_json_option(diff, "print the daemon's structured diff as JSON (with --stat: its diffstat)")
    diff.set_defaults(handler=cmd_diff)

    comment = verbs.add_parser(
        "comment", parents=[common], help="comment on a line of an attempt's diff",
        description="Attach a review comment to a line of the diff (an added or unchanged line, numbered as in "
                    "the new file). The agent reads pending comments with the next follow-up.")
    add_attempt_argument(comment)
    comment.add_argument("location", metavar="FILE:LINE", type=location,
                         help="a path as the diff names it, and a line number in the new file")
    comment.add_argument("text", nargs="+", metavar="TEXT", help="the comment (several words are joined)")
    add_json_option(comment, "print the created comment as JSON")
    comment.set_defaults(handler=cmd_comment)

    comments = verbs.add_parser("comments", parents=[common], help="an attempt's review comments")
    add_attempt_argument(comments)
    add_json_option(comments)
    comments.set_defaults(handler=cmd_comments)

    followup = verbs.add_parser(
        "followup", parents=[common], help="send an attempt in review back to work with a message",
        description="The agent continues with its whole conversation, this message, the pending comments "
                    "and whatever a person changed in the worktree meanwhile. Prints the attempt id and its "
                    "state (running).")
    add_attempt_argument(followup)
    followup.add_argument("text", nargs="+", metavar="TEXT", help="what to do next (several words are joined)")
    followup.add_argument("-f", "--follow", action="store_true",
                          help="then follow its log until it comes to rest; exit 1 if it fails or is cancelled")
    followup.set_defaults(handler=cmd_followup)

    shell = verbs.add_parser(
        "shell", parents=[common], help="a shell in the attempt's container (or its worktree: --host)",
        description="Starts the attempt's container if needed and runs bash (or sh) in it with docker exec, as "
                    "the sandbox user in /workspace. The exit code is the shell's.")
    add_attempt_argument(shell)
    shell.add_argument("--host", action="store_true",
                       help="run $SHELL (default /bin/sh) on this machine in the worktree instead")
    shell.set_defaults(handler=cmd_shell)

    open_ = verbs.add_parser(
        "open", parents=[common], help="open the attempt's worktree in an editor",
        description="Runs $KILOD_EDITOR (default 'code --new-window {path}'; {path} is replaced by the worktree, "
                    "or the path is appended). First warns on stderr about every changed file that can run "
                    "code when the folder is opened (editor tasks, CI, build files, hooks, nested "
                    "repositories). Without the editor it prints the path and the command.")
    add_attempt_argument(open_)
    open_.set_defaults(handler=cmd_open)


def _register_deciding(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    approve = verbs.add_parser(
        "approve", parents=[common], help="commit the reviewed work on the attempt's branch",
        description="Commits exactly the reviewed worktree on the attempt's branch (and with --merge merges it "
                    "into the card's base branch); the card's other attempts are discarded. A merge conflict "
                    "changes nothing: the files are listed and the exit code is 1.")
    approve_merge = verbs.add_parser(
        "merge", parents=[common], help="approve and merge into the base branch (= approve --merge)",
        description="approve --merge: commit the reviewed work on the attempt's branch and merge it into the "
                    "card's base branch. A conflict changes nothing: the files are listed and the exit code is 1.")
    for parser_ in (approve, approve_merge):
        add_attempt_argument(parser_)
        parser_.add_argument("-m", "--message", help="the commit message (default: the card's title, the "
                                                     "agent's summary and kilod trailers)")
        parser_.add_argument("--tree", metavar="TREE",
                             help="land only if the worktree is still this tree (the 'tree' of diff --json); "
                                  "without it the command shows what will land and asks")
        parser_.add_argument("-y", "--yes", action="store_true",
                             help="without --tree: land what this command shows without asking")
        add_json_option(parser_, "print the daemon's answer as JSON")
    approve.add_argument("--merge", action="store_true", help="also merge into the card's base branch")
    approve.set_defaults(handler=cmd_approve)
    approve_merge.set_defaults(handler=cmd_approve, merge=True)

    compare = verbs.add_parser(
        "compare", parents=[common], help="a card's attempts side by side; the best value in each column marked",
        description="One row per attempt: model, state, files changed, lines added and removed, checks, steps, "
                    "tool calls, tokens, cost, wall time, stop reason; the best value in each column marked with "
                    "a star. Then the files each attempt touched, where they overlap, and the card's totals. With "
                    "--diff FILE: that file's diff in every attempt in turn (highlighted through $PAGER on a "
                    "terminal; piped: a header line per attempt and the file's unified diff).")
    compare.add_argument("card", metavar="CARD", help="a card id, like 3fa9c2d1")
    compare.add_argument("--diff", metavar="FILE", help="show this file's diff (a path as the diff names it) for "
                                                        "every attempt")
    compare.add_argument("--no-pager", action="store_true", help="with --diff: print straight to the terminal")
    add_json_option(compare, "print the daemon's comparison as JSON (with --diff: each attempt's diff of the file)")
    compare.set_defaults(handler=cmd_compare)

    pick = verbs.add_parser(
        "pick", parents=[common], help="keep this attempt: approve it and discard its siblings",
        description="Approve the attempt (commit the reviewed worktree on its branch; with --merge also merge "
                    "it into the card's base branch); the daemon discards the card's other attempts, and pick "
                    "says which. A merge conflict changes nothing: the files are listed and the exit code is 1.")
    add_attempt_argument(pick)
    pick.add_argument("-m", "--message", help="the commit message (default: the card's title, the agent's "
                                              "summary and kilod trailers)")
    pick.add_argument("--merge", action="store_true", help="also merge into the card's base branch")
    pick.add_argument("-y", "--yes", action="store_true", help="land what pick shows without asking")
    add_json_option(pick, "print the daemon's answer as JSON")
    pick.set_defaults(handler=cmd_pick)

    discard = verbs.add_parser("discard", parents=[common],
                               help="drop an attempt: its container, worktree and branch")
    cancel = verbs.add_parser("cancel", parents=[common], help="stop a queued, starting or running attempt")
    retry = verbs.add_parser("retry", parents=[common], help="a new attempt with the same model; prints its id")
    for parser_, handler in ((discard, cmd_discard), (cancel, cmd_cancel), (retry, cmd_retry)):
        add_attempt_argument(parser_)
        add_json_option(parser_, "print the attempt as JSON")
        parser_.set_defaults(handler=handler)


def register(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    _register_reading(verbs, common)
    _register_deciding(verbs, common)
