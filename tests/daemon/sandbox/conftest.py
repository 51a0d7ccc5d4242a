"""Fixtures of the sandbox tests: an instance label of their own, and everything under it removed after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kilod_testing import new_instance, remove_labelled


@pytest.fixture
def instance() -> Iterator[str]:
    name = new_instance()
    yield name
    remove_labelled(name)
