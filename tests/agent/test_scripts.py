"""Scripts of the `scripted/<name>` provider: built-in ones, an extra folder, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kilod.agent import scripts
from kilod.agent.tools import TOOL_NAMES
from kilod.errors import Invalid

BUILTIN = {"careful", "hello", "quick", "thorough"}


def write(folder: Path, name: str, content: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_known_lists_builtin_scripts() -> None:
    assert set(scripts.known(None)) >= BUILTIN
    assert scripts.known(None) == sorted(scripts.known(None))


def test_known_adds_the_extra_folder(tmp_path: Path) -> None:
    write(tmp_path, "mine", {"steps": []})
    (tmp_path / "notes.txt").write_text("not a script")
    assert set(scripts.known(tmp_path)) == set(scripts.known(None)) | {"mine"}
    assert set(scripts.known(tmp_path / "missing")) == set(scripts.known(None))


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_scripts_load_and_use_real_tools(name: str) -> None:
    script = scripts.load(name, None)
    assert isinstance(script["steps"], list) and script["steps"]
    for step in script["steps"]:
        for tool in step.get("tools", []):
            assert tool["name"] in TOOL_NAMES
    last = script["steps"][-1]
    assert [t["name"] for t in last.get("tools", [])][-1:] == ["finish"]


def test_load_from_the_extra_folder(tmp_path: Path) -> None:
    content = {"description": "d", "steps": [{"say": "hi"}]}
    write(tmp_path, "mine", content)
    assert scripts.load("mine", tmp_path) == content


def test_extra_folder_overrides_a_builtin(tmp_path: Path) -> None:
    override = {"steps": [{"say": "overridden"}]}
    write(tmp_path, "hello", override)
    assert scripts.load("hello", tmp_path) == override
    assert scripts.load("hello", None) != override


def test_builtins_still_load_with_an_extra_folder(tmp_path: Path) -> None:
    write(tmp_path, "mine", {"steps": []})
    assert scripts.load("quick", tmp_path) == scripts.load("quick", None)


@pytest.mark.parametrize(
    "name", ["", "../hello", "..", ".hidden", "a/b", "a b", "-x", "hello.json/..", "/etc/passwd", "é"]
)
def test_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(Invalid, match="bad script name") as caught:
        scripts.load(name, tmp_path)
    assert caught.value.details == {"field": "models"}


def test_a_name_cannot_reach_outside_the_folders(tmp_path: Path) -> None:
    write(tmp_path, "secret", {"steps": [{"say": "outside"}]})
    extra = tmp_path / "scripts"
    extra.mkdir()
    with pytest.raises(Invalid):
        scripts.load("../secret", extra)


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, "mine", {"steps": []})
    with pytest.raises(Invalid, match="no script named 'nope'") as caught:
        scripts.load("nope", tmp_path)
    assert "mine" in caught.value.message
    assert "hello" in caught.value.message
    assert caught.value.details == {"field": "models"}


def test_bad_json(tmp_path: Path) -> None:
    path = write(tmp_path, "broken", '{"steps": [')
    with pytest.raises(Invalid, match="not valid JSON") as caught:
        scripts.load("broken", tmp_path)
    assert str(path) in caught.value.message


@pytest.mark.parametrize("content", [{}, {"steps": "go"}, {"steps": {"a": 1}}, [], "just text", None])
def test_missing_steps(tmp_path: Path, content: object) -> None:
    write(tmp_path, "stepless", json.dumps(content))
    with pytest.raises(Invalid, match="needs a list of 'steps'"):
        scripts.load("stepless", tmp_path)


def test_a_folder_named_like_a_script_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "hello.json").mkdir()
    assert scripts.load("hello", tmp_path) == scripts.load("hello", None)
