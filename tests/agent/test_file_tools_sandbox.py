"""read_file, edit_file, list_files and search in a real container, on a worktree with a .gitignore."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kilod.agent.tools import ToolRunner
from tests.agent.sandboxed import sandboxed_tools


@pytest.fixture
def runner(tmp_path: Path, sandbox_image: str) -> Iterator[ToolRunner]:
    with sandboxed_tools(tmp_path, sandbox_image) as tools:
        yield tools


async def call(runner: ToolRunner, name: str, **arguments: object) -> str:
    outcome = await runner.run(name, json.dumps(arguments))
    assert outcome.ok, outcome.output
    return outcome.output


async def test_list_and_search_honour_gitignore_show_dotfolders_and_take_a_glob(runner: ToolRunner) -> None:
    files = {".gitignore": "node_modules/\n*.log\n", "src/app.py": "def main():\n    return 'needle'\n",
             "src/util.ts": "export const needle = 1;\n", ".github/workflows/ci.yml": "run: needle\n",
             "node_modules/dep/index.js": "needle\n", "debug.log": "needle\n"}
    for path, content in files.items():
        await call(runner, "write_file", path=path, content=content)

    listed = (await call(runner, "list_files")).splitlines()
    assert {"./.github/workflows/ci.yml", "./.gitignore", "./src/app.py", "./src/util.ts"} <= set(listed)
    assert not [p for p in listed if "node_modules" in p or p.endswith(".log") or "/.git/" in p]
    assert (await call(runner, "list_files", glob="*.py")).splitlines() == ["./src/app.py"]

    found = (await call(runner, "search", pattern="NEEDLE", ignore_case=True)).splitlines()
    assert sorted(line.split(":")[0] for line in found) == ["./.github/workflows/ci.yml", "./src/app.py",
                                                             "./src/util.ts"]
    assert (await call(runner, "search", pattern="needle", glob="*.ts")) == "./src/util.ts:1:export const needle = 1;\n"
    assert await call(runner, "search", pattern="NEEDLE") == "(no matches)"


async def test_read_and_edit_answer_in_windows_and_regions(runner: ToolRunner) -> None:
    await call(runner, "write_file", path="big.py", content="".join(f"x{n} = {n}\n" for n in range(1, 1001)))

    window = await call(runner, "read_file", path="big.py")
    assert window.splitlines()[-1] == "[big.py: 1000 lines; lines 401-1000 not shown; read on with offset=401]"

    edited = await call(runner, "edit_file", path="big.py", old_string="x500 = 500\n", new_string="x500 = (\n")
    assert edited.splitlines() == ["edited big.py:", *[f"{n:>6}\tx{n} = {n}" for n in range(497, 500)],
                                   "   500\tx500 = (", *[f"{n:>6}\tx{n} = {n}" for n in range(501, 504)],
                                   "warning: big.py no longer parses as Python: line 500: '(' was never closed"]
