"""`kilod completion bash|zsh|fish`: shell completion for verbs, options and ids.

The scripts are generated from the parser itself, so a new verb or option completes
without touching this file. Ids (cards, attempts) and the daemon's states are asked of
the daemon when Tab is pressed, through `kilod completion --list KIND`: a short timeout,
and nothing at all (no message, exit 0) when no daemon answers. zsh uses the bash
script through zsh's own `bashcompinit`; fish gets a native script.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kilod_cli.client import Client, CliError
from kilod_cli.host_verbs import IMAGE_TARGETS
from kilod_cli.verbs import EXIT_OK, Subparsers, add_socket_option

SHELLS = ("bash", "zsh", "fish")
LIST_KINDS = ("cards", "attempts", "ids", "states")
LIST_TIMEOUT_SECONDS = 1.0
# What a positional argument completes to, by its metavar; an option's value, by its dest.
POSITIONAL_KINDS = {"ATTEMPT": "attempts", "CARD": "cards", "CARD_OR_ATTEMPT": "ids",
                    "IMAGE": "words:" + " ".join(IMAGE_TARGETS),
                    "SHELL": "words:" + " ".join(SHELLS), "KIND": "words:" + " ".join(LIST_KINDS)}
VALUE_KINDS = {"socket": "file", "repo": "dir", "repos": "dir", "states": "states"}


@dataclass
class Level:
    """One parser of the tree: `kilod`, `kilod ctl`, `kilod ctl board`, ..."""

    path: str
    verbs: dict[str, str] = field(default_factory=dict)  # name → help
    options: dict[str, str] = field(default_factory=dict)  # option string → help
    valued: dict[str, str] = field(default_factory=dict)  # option string → what its value is ("" free text)
    positional: str = ""  # what its first positional completes to


def levels(parser: argparse.ArgumentParser, path: str = "kilod") -> list[Level]:
    """Every parser of the tree, depth first, read from argparse's own description of it."""
    level = Level(path)
    found = [level]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: str(choice.help or "") for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if helps.get(name, "") == argparse.SUPPRESS:
                    continue
                level.verbs[name] = helps.get(name, "")
                found.extend(levels(sub, f"{path} {name}"))
        elif action.option_strings:
            if action.help == argparse.SUPPRESS:
                continue
            for option in action.option_strings:
                level.options[option] = str(action.help or "").replace("%%", "%")
                if action.nargs != 0:
                    level.valued[option] = VALUE_KINDS.get(action.dest, "")
        elif not level.positional:
            level.positional = POSITIONAL_KINDS.get(str(action.metavar), "")
    return found


def _case(entries: dict[str, str], default: str = "") -> str:
    """A shell `case` on $1 that echoes the value of the matching key (`default` for none)."""
    arms = "".join(f"    {shlex.quote(key)}) echo {shlex.quote(value)} ;;\n" for key, value in entries.items() if value)
    if not arms:
        return f"  echo {shlex.quote(default)}"
    return f'  case "$1" in\n{arms}    *) echo {shlex.quote(default)} ;;\n  esac'


def bash_script(tree: list[Level]) -> str:
    verbs = _case({level.path: " ".join(level.verbs) for level in tree})
    options = _case({level.path: " ".join(level.options) for level in tree})
    # "-" marks an option that takes free text: something to skip, nothing to offer
    valued = _case({f"{level.path} {option}": kind or "-" for level in tree for option, kind in level.valued.items()})
    positional = _case({level.path: level.positional for level in tree})
    return f"""\
# kilod completion for bash (zsh: `kilod completion zsh`). Load it with
#   eval "$(kilod completion bash)"            (in ~/.bashrc), or save it as
#   ~/.local/share/bash-completion/completions/kilod
_kilod_verbs() {{
{verbs}
}}
_kilod_options() {{
{options}
}}
_kilod_valued() {{
{valued}
}}
_kilod_positional() {{
{positional}
}}
_kilod_offer() {{
  case "$1" in
    file|dir|-|'') COMPREPLY=() ;;
    words:*) COMPREPLY=($(compgen -W "${{1#words:}}" -- "$2")) ;;
    *) COMPREPLY=($(compgen -W "$("$3" completion --list "$1" ${{4:+--socket "$4"}} 2>/dev/null)" -- "$2")) ;;
  esac
}}
_kilod() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" path=kilod socket="" given=0 i word kind verbs
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${{COMP_WORDS[i]}}"
    if [[ "$word" == -* ]]; then
      kind="$(_kilod_valued "$path $word")"
      if [[ -n "$kind" && "$word" != *=* ]]; then
        ((i++))
        [[ "$word" == --socket ]] && socket="${{COMP_WORDS[i]}}"
      fi
      continue
    fi
    verbs=" $(_kilod_verbs "$path") "
    if [[ "$verbs" == *" $word "* ]]; then path="$path $word"; else ((given++)); fi
  done
  if ((COMP_CWORD > 1)); then
    kind="$(_kilod_valued "$path ${{COMP_WORDS[COMP_CWORD-1]}}")"
    if [[ -n "$kind" ]]; then
      _kilod_offer "$kind" "$cur" "${{COMP_WORDS[0]}}" "$socket"
      return 0
    fi
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_kilod_options "$path")" -- "$cur"))
    return 0
  fi
  verbs="$(_kilod_verbs "$path")"
  if [[ -n "$verbs" ]]; then
    COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
    return 0
  fi
  ((given == 0)) && _kilod_offer "$(_kilod_positional "$path")" "$cur" "${{COMP_WORDS[0]}}" "$socket"
  return 0
}}
complete -o default -F _kilod kilod
"""


def zsh_script(tree: list[Level]) -> str:
    return ("#compdef kilod\n# kilod completion for zsh: eval \"$(kilod completion zsh)\" in ~/.zshrc, after compinit\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(tree))


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script(tree: list[Level]) -> str:
    verbs = "".join(f"        case {_fish_quote(level.path)}\n            echo {' '.join(level.verbs)}\n"
                    for level in tree if level.verbs)
    valued = "".join(f"        case {_fish_quote(level.path + ' ' + option)}\n            echo {kind or '-'}\n"
                     for level in tree for option, kind in level.valued.items())
    lines = [
        "# kilod completion for fish: kilod completion fish > ~/.config/fish/completions/kilod.fish",
        "function __kilod_verbs\n    switch $argv[1]\n" + verbs + "    end\nend",
        "function __kilod_valued\n    switch $argv[1]\n" + valued + "    end\nend",
        """function __kilod_path
    set -l path kilod
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $word
            if test -n "$(__kilod_valued "$path $word")"; and not string match -q -- '*=*' $word
                set skip 1
            end
            continue
        end
        if contains -- $word (string split ' ' -- (__kilod_verbs $path))
            set path "$path $word"
        end
    end
    echo $path
end""",
        "function __kilod_at\n    test (__kilod_path) = $argv[1]\nend",
        "function __kilod_list\n    kilod completion --list $argv[1] 2>/dev/null\nend",
        "complete -c kilod -f",
    ]
    for level in tree:
        at = _fish_quote(f"__kilod_at {shlex.quote(level.path)}")
        for verb, help_text in level.verbs.items():
            lines.append(f"complete -c kilod -n {at} -a {verb} -d {_fish_quote(help_text)}")
        for option, help_text in level.options.items():
            flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
            kind = level.valued.get(option)
            value = ""
            if kind == "file":
                value = " -r -F"
            elif kind == "dir":
                value = " -x -a '(__fish_complete_directories)'"
            elif kind is not None:
                value = f" -x -a '(__kilod_list {kind})'" if kind else " -x"
            lines.append(f"complete -c kilod -n {at} {flag}{value} -d {_fish_quote(help_text[:80])}")
        kind = level.positional
        if kind.startswith("words:"):
            lines.append(f"complete -c kilod -n {at} -a {_fish_quote(kind.removeprefix('words:'))}")
        elif kind:
            lines.append(f"complete -c kilod -n {at} -a '(__kilod_list {kind})'")
    return "\n".join(lines) + "\n"


def list_words(client: Client, kind: str) -> list[str]:
    if kind == "states":
        return list(client.meta().states)
    board = client.get("/v1/board")
    cards = [card for column in board.get("columns") or [] for card in column.get("cards") or []]
    words: list[str] = []
    for card in cards:
        if kind in ("cards", "ids"):
            words.append(str(card["id"]))
        if kind in ("attempts", "ids"):
            words.extend(str(attempt["id"]) for attempt in card.get("attempts") or [])
    # an id is one word on a command line: anything else the daemon sent is not offered
    return [word for word in words if word.isprintable() and word and not any(c.isspace() for c in word)]


def run(args: argparse.Namespace) -> int:
    if args.list:
        socket = getattr(args, "socket", None)
        from kilod.paths import socket_path

        client = Client(Path(socket) if socket else socket_path(), timeout=LIST_TIMEOUT_SECONDS)
        # Tab must never print an error into the command line being typed
        with contextlib.suppress(CliError, KeyError, TypeError, AttributeError):
            sys.stdout.write("".join(word + "\n" for word in list_words(client, args.list)))
        return EXIT_OK
    if args.shell is None:
        args.parser.error("name a shell: bash, zsh or fish")
    from kilod_cli.main import build_parser

    tree = levels(build_parser())
    script = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[args.shell](tree)
    sys.stdout.write(script)
    return EXIT_OK


def register(verbs: Subparsers, common: argparse.ArgumentParser) -> None:
    completion = verbs.add_parser(
        "completion", help="shell completion for bash, zsh or fish",
        description="Print a completion script for verbs, options and ids (asked of the daemon, quietly "
                    "nothing when it is not running). bash: eval \"$(kilod completion bash)\" in ~/.bashrc; "
                    "zsh: eval \"$(kilod completion zsh)\" in ~/.zshrc after compinit; fish: kilod completion "
                    "fish > ~/.config/fish/completions/kilod.fish.")
    completion.add_argument("shell", nargs="?", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    completion.add_argument("--list", choices=LIST_KINDS, help=argparse.SUPPRESS)
    add_socket_option(completion, argparse.SUPPRESS)
    completion.set_defaults(handler=run, parser=completion)
