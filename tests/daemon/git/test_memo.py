"""The review memo: answers kept a while, the oldest dropped first, none kept past its time."""

from __future__ import annotations

import time

from kilod.git.memo import Memo


def test_answers_are_kept_and_the_oldest_go_first() -> None:
    memo: Memo[str, int] = Memo(entries=2, seconds=60)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1
    memo.put("c", 3)  # full: "a", the oldest written, goes
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (None, 2, 3)


def test_answers_expire() -> None:
    memo: Memo[str, int] = Memo(entries=8, seconds=0.05)
    memo.put("a", 1)
    time.sleep(0.1)
    assert memo.get("a") is None
