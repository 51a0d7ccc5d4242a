"""Which agent runs which model: the card request's `agents` x `models`, and `agent:model`.

    {"models": ["m1", "m2"]}                               builtin x m1, builtin x m2  (as before)
    {"agents": ["claude-code", "codex"], "models": ["m"]}  claude-code x m, codex x m
    {"agents": ["claude-code", "builtin"]}                 each with the daemon's default model
    {"models": ["codex:openai/gpt-4o", "m"]}               codex x openai/gpt-4o, plus every agent x m

An entry `agent:model` is one attempt of exactly that pair; only a known agent name
before the first ':' makes it one, so models with ':' in their names
(`ollama/llama3:8b`) still read as models. `repeat` repeats every pair (best of N).
Pure: the board validates the names, the store records `attempt.agent`.
"""

from __future__ import annotations

from kilod.agents.catalog import AGENT_NAMES, BUILTIN


def split_pair(entry: str) -> tuple[str | None, str]:
    """('codex', 'openai/gpt-4o') for 'codex:openai/gpt-4o'; (None, entry) for a plain model."""
    head, sep, tail = entry.partition(":")
    if sep and head in AGENT_NAMES and tail:
        return head, tail
    return None, entry


def attempt_plan(agents: list[str] | None, models: list[str] | None, default_model: str,
                 repeat: int = 1) -> list[tuple[str, str]]:
    """(agent, model) per attempt, in request order: agents outer, models inner, then repeats."""
    pairs = [split_pair(m) for m in models or []]
    plain = [m for a, m in pairs if a is None]
    explicit = [(a, m) for a, m in pairs if a is not None]
    crossed: list[tuple[str, str]] = []
    if plain or not explicit:
        crossed = [(agent, model) for agent in (agents or [BUILTIN]) for model in (plain or [default_model])]
    elif agents:
        crossed = [(agent, default_model) for agent in agents]
    return [pair for pair in crossed + explicit for _ in range(repeat)]
