"""Answers git already gave during reviews, kept a while: the same question has the same answer.

A snapshot's tree is a function of the base tree and the changes written over it, and a
diff is a function of its two trees; a person reviewing asks for the same diff again and
again (the board refreshing, `ctl diff`, approve's fresh snapshot) while the worktree stays
as it was. Kept an hour at most and a bounded number: the trees and blobs a snapshot wrote
are referenced by nothing until they land, and git may prune unreferenced objects (after two
weeks by default), so a remembered tree is never much older than its objects' last write.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A small thread-safe map whose entries expire; the oldest go first when it is full."""

    def __init__(self, entries: int, seconds: float) -> None:
        self._entries = entries
        self._seconds = seconds
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if time.monotonic() - found[0] > self._seconds:
                del self._items[key]
                return None
            return found[1]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._entries:
                self._items.popitem(last=False)
