"""Image tags follow what a build reads at the base commit: context tree, Dockerfile, args (real git, no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kilod.environments.images import ImageBuildFailed, Recipe, recipe_of, tag_for
from kilod.git.paths import inspect_repo
from tests.kilod_testing import git, make_repo


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def test_the_tag_changes_with_the_recipe_and_only_with_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"env/Dockerfile": "FROM debian:bookworm-slim\n", "env/tool.sh": "echo 1\n",
                                      "src/app.py": "print(1)\n"})
    paths = inspect_repo(str(repo))
    recipe = Recipe("env/Dockerfile", "env", ())
    first = tag_for(paths, head(repo), recipe)
    assert first.startswith("kilod-env:")

    (repo / "src/app.py").write_text("print(2)\n")  # outside the context: same image
    git(repo, "commit", "-qam", "app")
    assert tag_for(paths, head(repo), recipe) == first
    (repo / "env/tool.sh").write_text("echo 2\n")    # inside the context: a new image
    git(repo, "commit", "-qam", "tool")
    second = tag_for(paths, head(repo), recipe)
    assert second != first
    assert tag_for(paths, head(repo), Recipe("env/Dockerfile", "env", (("A", "1"),))) != second
    assert tag_for(paths, head(repo), Recipe("env/Dockerfile", ".", ())) != second

    (repo / "env/untracked.txt").write_text("not committed\n")  # the worktree never counts
    assert tag_for(paths, head(repo), recipe) == second


def test_a_recipe_names_committed_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "#\n"})
    with pytest.raises(ImageBuildFailed, match="'ci/Dockerfile' is not in the base commit"):
        tag_for(inspect_repo(str(repo)), head(repo), Recipe("ci/Dockerfile", ".", ()))
    with pytest.raises(ImageBuildFailed, match="folder 'nope'"):
        tag_for(inspect_repo(str(repo)), head(repo), Recipe("README.md", "nope", ()))


def test_the_context_defaults_to_the_dockerfiles_folder() -> None:
    assert recipe_of({"dockerfile": "ci/docker/Dockerfile"}) == Recipe("ci/docker/Dockerfile", "ci/docker", ())
    assert recipe_of({"dockerfile": "Dockerfile", "args": {"B": 2, "A": "1"}}) == \
        Recipe("Dockerfile", ".", (("A", "1"), ("B", "2")))
    assert recipe_of({"image": "python:3.12"}) is None
