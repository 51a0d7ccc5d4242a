"""Tool-runner paths that answer before any container is touched, and output truncation.

The Docker host points at a socket that does not exist: a tool that reached for the
engine would answer "cannot reach the Docker engine" instead of the expected error.
"""

from __future__ import annotations

import json

import pytest

from kilod.agent.tools import FINISH, TOOL_NAMES, TOOL_SCHEMAS, ToolRunner, truncate
from kilod.sandbox.docker import DockerSandbox


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> ToolRunner:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/kilod-tests-no-docker.sock")
    return ToolRunner(sandbox=DockerSandbox(), container_id="no-such-container", uid=1000, gid=1000,
                      shell_timeout=5.0, output_limit=1000)


# -- truncate -------------------------------------------------------------------


def test_truncate_leaves_short_text_alone() -> None:
    assert truncate("", 10) == ""
    assert truncate("abc", 10) == "abc"
    assert truncate("x" * 10, 10) == "x" * 10


def test_truncate_keeps_head_and_tail() -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(10_000))
    out = truncate(text, 1000)
    head, marker, tail = out.split("\n")
    assert head == text[:600]
    assert tail == text[-400:]
    assert marker == "[… 9000 characters cut …]"


def test_truncate_one_over_the_limit() -> None:
    out = truncate("0123456789X", 10)
    assert out == "012345\n[… 1 characters cut …]\n789X"


# -- schemas ---------------------------------------------------------------------


def test_tool_schemas_are_well_formed() -> None:
    assert {"shell", "read_file", "write_file", "edit_file", "list_files", "search", "todo", FINISH} == TOOL_NAMES
    for schema in TOOL_SCHEMAS:
        function = schema["function"]
        assert schema["type"] == "function"
        assert function["description"]
        parameters = function["parameters"]
        assert parameters["type"] == "object"
        assert set(parameters["required"]) <= set(parameters["properties"])
    json.dumps(TOOL_SCHEMAS)  # goes over the wire as JSON


def test_every_tool_has_a_handler() -> None:
    for name in TOOL_NAMES - {FINISH, "todo"}:  # both answered by run() itself
        assert callable(getattr(ToolRunner, f"_{name}"))


# -- run(): answers that never reach the sandbox ---------------------------------


async def test_unknown_tool(runner: ToolRunner) -> None:
    outcome = await runner.run("rm_rf", "{}")
    assert not outcome.ok
    assert not outcome.finished
    assert outcome.output.startswith("error: unknown tool 'rm_rf'; tools are: ")
    for name in TOOL_NAMES:
        assert name in outcome.output


@pytest.mark.parametrize("name", ["_sh", "_read", "__init__", "run", "sandbox", "_shell"])
async def test_private_methods_are_not_tools(runner: ToolRunner, name: str) -> None:
    outcome = await runner.run(name, json.dumps({"command": "true"}))
    assert not outcome.ok
    assert outcome.output.startswith(f"error: unknown tool '{name}'")


@pytest.mark.parametrize("arguments", ["{not json", "{'single': 'quotes'}", '{"a": 1', "nul"])
async def test_bad_json(runner: ToolRunner, arguments: str) -> None:
    outcome = await runner.run("shell", arguments)
    assert not outcome.ok
    assert outcome.output.startswith("error: arguments are not valid JSON: ")


@pytest.mark.parametrize("arguments", ["[]", '["ls"]', '"ls"', "42", "null", "true"])
async def test_arguments_must_be_an_object(runner: ToolRunner, arguments: str) -> None:
    outcome = await runner.run("shell", arguments)
    assert (outcome.ok, outcome.output) == (False, "error: arguments must be a JSON object")


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("shell", {"cmd": "ls"}),
        ("shell", {}),
        ("read_file", {"file": "x"}),
        ("write_file", {"path": "x"}),
        ("edit_file", {"path": "x", "old_string": "a"}),
        ("search", {"regex": "x"}),
        ("list_files", {"path": ".", "recursive": True}),
    ],
)
async def test_missing_or_unexpected_arguments(runner: ToolRunner, name: str, arguments: dict[str, object]) -> None:
    outcome = await runner.run(name, json.dumps(arguments))
    assert not outcome.ok
    assert outcome.output.startswith(f"error: bad arguments for {name}: ")


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("shell", {"command": ""}, "error: command must be a non-empty string"),
        ("shell", {"command": "   \n"}, "error: command must be a non-empty string"),
        ("shell", {"command": ["ls", "-l"]}, "error: bad arguments for shell: argument 'command' must be a "
                                             'string, not list ["ls", "-l"]; the call was not run'),
        ("write_file", {"path": "a.txt", "content": 12}, "error: bad arguments for write_file: argument 'content' "
                                                         "must be a string, not int 12; the call was not run"),
        ("read_file", {"offset": "10"}, "error: bad arguments for read_file: missing required argument 'path'; "
                                        "argument 'offset' must be an integer, not str \"10\"; the call was not run"),
        ("edit_file", {"path": "a.txt", "old_string": "", "new_string": "x"},
         "error: old_string must not be empty"),
    ],
)
async def test_wrong_argument_values(runner: ToolRunner, name: str, arguments: dict[str, object],
                                     message: str) -> None:
    outcome = await runner.run(name, json.dumps(arguments))
    assert (outcome.ok, outcome.finished, outcome.output) == (False, False, message)


async def test_finish(runner: ToolRunner) -> None:
    outcome = await runner.run(FINISH, json.dumps({"summary": "  Added HELLO.md.\n"}))
    assert outcome.ok
    assert outcome.finished
    assert outcome.summary == "Added HELLO.md."
    assert outcome.output == "done; the work now waits for review"


@pytest.mark.parametrize("arguments", ["", "{}", '{"other": 1}'])
async def test_finish_without_a_summary(runner: ToolRunner, arguments: str) -> None:
    outcome = await runner.run(FINISH, arguments)
    assert (outcome.ok, outcome.finished, outcome.summary) == (True, True, "")


async def test_finish_with_bad_json_does_not_finish(runner: ToolRunner) -> None:
    outcome = await runner.run(FINISH, "{oops")
    assert not outcome.finished
    assert not outcome.ok


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("shell", {"command": "ls", "timeout": "soon"}),
        ("list_files", {"path": ".", "depth": "deep"}),
    ],
)
async def test_badly_typed_arguments_are_told_to_the_model(runner: ToolRunner, name: str,
                                                           arguments: dict[str, object]) -> None:
    """A model's wrong argument type is its mistake to fix, not a crash of the whole attempt."""
    outcome = await runner.run(name, json.dumps(arguments))
    assert not outcome.ok
    assert outcome.output.startswith("error: ")
    assert "Docker" not in outcome.output
