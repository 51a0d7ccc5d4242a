"""Agent streams → kilod events, the agent x model plan, and the output tail: pure parts, hostile input."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

from kilod.agents.aider import SUMMARY_LIMIT, Aider
from kilod.agents.base import TEXT_LIMIT, Outcome, Request
from kilod.agents.choice import attempt_plan, split_pair
from kilod.agents.claude_code import ClaudeCode
from kilod.agents.codex import Codex, config_toml
from kilod.agents.mini_swe_agent import MiniSweAgent
from kilod.agents.process import Tail
from kilod.domain import EventKind

REQUEST = Request(prompt="do it", run=1, base_url="http://127.0.0.1:41414", token="tok-123", attempt_id="c1-1",
                  model="scripted/x", session=None, max_turns=7)


def line(value: object) -> str:
    return json.dumps(value)


def test_claude_code_stream_becomes_messages_calls_and_named_results() -> None:
    outcome, adapter = Outcome(), ClaudeCode()
    stream = [
        {"type": "system", "subtype": "init", "session_id": "s-1", "model": "claude"},
        {"type": "assistant", "message": {"content": [
            {"type": "text", "text": "I will write."},
            {"type": "tool_use", "id": "tu1", "name": "Write",
             "input": {"file_path": "/workspace/a", "content": "x"}}]}},
        {"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "tu1", "content": [{"type": "text", "text": "written"}]}]}},
        {"type": "result", "subtype": "success", "is_error": False, "result": "All done.", "num_turns": 2},
    ]
    events = [e for item in stream for e in adapter.parse(line(item), outcome)]
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.LOG, EventKind.MESSAGE, EventKind.TOOL_CALL, EventKind.TOOL_RESULT, EventKind.LOG]
    assert events[2].payload["name"] == "Write"
    assert json.loads(events[2].payload["arguments"])["file_path"] == "/workspace/a"
    assert events[3].payload == {"id": "tu1", "name": "Write", "ok": True, "output": "written"}
    assert (outcome.session, outcome.summary, outcome.finished, outcome.error) == ("s-1", "All done.", True, None)


def test_claude_code_error_result_and_hostile_lines() -> None:
    outcome, adapter = Outcome(), ClaudeCode()
    assert adapter.parse("not json at all", outcome)[0].kind == EventKind.LOG
    assert adapter.parse("[1, 2]", outcome)[0].kind == EventKind.LOG     # JSON, but not an object
    assert adapter.parse("", outcome) == []
    huge = adapter.parse(line({"type": "assistant", "message": {"content": "x" * (TEXT_LIMIT * 3)}}), outcome)
    assert len(huge[0].payload["content"]) < TEXT_LIMIT + 100
    assert adapter.parse(line({"type": "assistant", "message": "oops"}), outcome) == []
    adapter.parse(line({"type": "result", "subtype": "error_max_turns", "is_error": True, "result": None}), outcome)
    assert outcome.error and "error_max_turns" in outcome.error


def test_claude_code_command_line_resumes_the_session_it_chose() -> None:
    adapter = ClaudeCode()
    first = adapter.launch(REQUEST)
    session = adapter.session_for("c1-1")
    assert first.argv[first.argv.index("--session-id") + 1] == session
    assert first.env["ANTHROPIC_AUTH_TOKEN"] == "tok-123" and "ANTHROPIC_API_KEY" not in first.env
    assert first.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    later = adapter.launch(Request(**{**REQUEST.__dict__, "run": 2, "session": session}))
    assert later.argv[later.argv.index("--resume") + 1] == session and "--session-id" not in later.argv


def test_codex_stream_and_its_config() -> None:
    outcome, adapter = Outcome(), Codex()
    stream = [
        {"type": "thread.started", "thread_id": "th-9"},
        {"type": "item.started", "item": {"id": "i1", "type": "command_execution", "command": "ls",
                                          "status": "in_progress"}},
        {"type": "item.completed", "item": {"id": "i1", "type": "command_execution", "command": "ls",
                                            "aggregated_output": "a.txt\n", "exit_code": 0, "status": "completed"}},
        {"type": "item.completed", "item": {"id": "i2", "type": "file_change", "status": "completed",
                                            "changes": [{"path": "b.txt", "kind": "add"}]}},
        {"type": "item.completed", "item": {"id": "i3", "type": "agent_message", "text": "Done."}},
        {"type": "turn.completed", "usage": {"input_tokens": 5, "output_tokens": 2}},
    ]
    events = [e for item in stream for e in adapter.parse(line(item), outcome)]
    assert [e.kind for e in events] == [EventKind.LOG, EventKind.TOOL_CALL, EventKind.TOOL_RESULT,
                                        EventKind.TOOL_CALL, EventKind.TOOL_RESULT, EventKind.MESSAGE]
    assert events[2].payload["ok"] is True and events[2].payload["output"] == "a.txt\n"
    assert (outcome.session, outcome.summary, outcome.finished) == ("th-9", "Done.", True)
    adapter.parse(line({"type": "turn.failed", "error": {"message": "403 budget"}}), outcome)
    assert outcome.error and "403 budget" in outcome.error

    launch = adapter.launch(Request(**{**REQUEST.__dict__, "run": 2, "session": "th-9"}))
    assert launch.argv[-3:] == ["resume", "th-9", "do it"]
    config = launch.files["codex/config.toml"]
    assert 'base_url = "http://127.0.0.1:41414/v1"' in config and 'env_key = "KILOD_GATEWAY_TOKEN"' in config
    assert "tok-123" not in config and launch.env["KILOD_GATEWAY_TOKEN"] == "tok-123"
    parsed = tomllib.loads(config_toml('http://x"\n[evil]'))   # a base URL cannot break out of its string
    assert parsed["model_providers"]["kilod"]["base_url"] == 'http://x"\n[evil]/v1' and "evil" not in parsed


def test_agent_model_plan() -> None:
    assert attempt_plan(None, ["m1", "m2"], "d") == [("builtin", "m1"), ("builtin", "m2")]
    assert attempt_plan(["claude-code", "codex"], ["m"], "d") == [("claude-code", "m"), ("codex", "m")]
    assert attempt_plan(["codex"], None, "d", repeat=2) == [("codex", "d"), ("codex", "d")]
    assert attempt_plan(None, ["codex:openai/gpt-4o"], "d") == [("codex", "openai/gpt-4o")]
    assert attempt_plan(["builtin"], ["codex:x", "m"], "d") == [("builtin", "m"), ("codex", "x")]
    assert split_pair("ollama/llama3:8b") == (None, "ollama/llama3:8b")   # not an agent: a model with a ':'
    assert split_pair("codex:") == (None, "codex:")


def test_tail_reads_whole_lines_and_picks_up_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b'{"a": 1}\n{"b": ')
    tail = Tail(path)
    assert tail.lines() == [(9, '{"a": 1}')]
    with path.open("ab") as handle:
        handle.write(b'2}\n\xff\xfe broken utf-8\n')
    second = tail.lines()
    assert [text for _, text in second] == ['{"b": 2}', "\ufffd\ufffd broken utf-8"]
    resumed = Tail(path, offset=second[0][0])   # a restarted daemon starts after what it recorded
    assert [text for _, text in resumed.lines()] == ["\ufffd\ufffd broken utf-8"]
    with path.open("ab") as handle:
        handle.write(b"no newline at the end")
    assert tail.lines() == [] and tail.rest()[-1][1] == "no newline at the end"


def mini_line(role: str, content: str = "", **fields: object) -> str:
    return line({"kilod-mini": 1, "role": role, "content": content, **fields})


def test_mini_swe_agent_messages_become_calls_and_results_as_they_are_added() -> None:
    outcome, adapter = Outcome(), MiniSweAgent()
    console = ["Building agent config from specs: ['mini.yaml']", "─" * 40,
               mini_line("system", "You are a helpful assistant."), mini_line("user", "Please solve this issue: x"),
               mini_line("assistant", "I will look.", tool_calls=[{"id": "call_1", "command": "ls"}]),
               mini_line("tool", "<returncode>0</returncode>\n<output>\na.txt\n</output>", tool_call_id="call_1",
                         returncode=0),
               mini_line("assistant", "Done.", tool_calls=[{"id": "call_2", "command": "echo COMPLETE"}]),
               mini_line("exit", "", exit_status="Submitted"),
               '{"kilod-mini": 1, "role": "assistant", "tool_calls": "not a list"}', "{not json"]
    events = [e for text in console for e in adapter.parse(text, outcome)] + adapter.finish(outcome)
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.LOG, EventKind.MESSAGE, EventKind.TOOL_CALL, EventKind.TOOL_RESULT,
                     EventKind.MESSAGE, EventKind.TOOL_CALL, EventKind.LOG, EventKind.LOG], events
    assert json.loads(events[2].payload["arguments"]) == {"command": "ls"}
    assert events[3].payload["ok"] is True and events[3].payload["id"] == "call_1" and "a.txt" in events[3].payload[
        "output"]
    assert not any("Please solve" in str(e.payload) for e in events)   # its prompt is not echoed
    assert outcome.finished and outcome.error is None and outcome.summary == "Done."


def test_mini_swe_agent_stopping_short_is_an_error() -> None:
    outcome = Outcome()
    MiniSweAgent().parse(mini_line("exit", "LimitsExceeded", exit_status="LimitsExceeded"), outcome)
    assert outcome.finished and outcome.error is not None and "LimitsExceeded" in outcome.error


def test_mini_swe_agent_follow_up_restores_its_trajectory() -> None:
    adapter = MiniSweAgent()
    first = adapter.launch(REQUEST)
    follow_up = adapter.launch(replace(REQUEST, run=2, session=adapter.session_for("x")))
    for launch in (first, follow_up):
        assert launch.argv[launch.argv.index("--agent-class") + 1] == "kilod_mini.KilodAgent"
        assert "class KilodAgent(InteractiveAgent)" in launch.files["mini/kilod_mini.py"]
        assert launch.env["PYTHONPATH"] == "/opt/kilod/state/mini" and launch.env["PYTHONUNBUFFERED"] == "1"
        assert "agent.step_limit=7" in launch.argv
    assert first.argv[first.argv.index("-o") + 1].endswith("/run-1.json") and first.env["KILOD_MINI_RUN"] == "1"
    assert follow_up.argv[follow_up.argv.index("-o") + 1].endswith("/run-2.json")
    assert follow_up.env["KILOD_MINI_RUN"] == "2"
    assert follow_up.env["KILOD_MINI_TRAJECTORIES"] == adapter.session_for("x")
    assert "tok-123" not in json.dumps(follow_up.files)   # the token is in the environment only


def test_aider_follow_up_restores_its_chat_history_and_its_summary_is_what_it_printed_last() -> None:
    adapter = Aider()
    first, follow_up = adapter.launch(REQUEST), adapter.launch(replace(REQUEST, run=2))
    assert "--restore-chat-history" not in first.argv and "--restore-chat-history" in follow_up.argv
    assert first.argv[first.argv.index("--chat-history-file") + 1] == adapter.session_for("x")
    outcome = Outcome()
    events = [e for text in ["x" * 3000, "Applied edit to a.txt", "Tokens: 1k sent, 20 received."]
              for e in adapter.parse(text, outcome)]
    assert [e.kind for e in events] == [EventKind.LOG, EventKind.TOOL_CALL, EventKind.TOOL_RESULT, EventKind.LOG]
    assert outcome.summary.endswith("Tokens: 1k sent, 20 received.") and len(outcome.summary) == SUMMARY_LIMIT
