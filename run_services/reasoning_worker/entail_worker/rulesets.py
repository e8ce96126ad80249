"""Compiled rulesets kept in process, keyed by content hash (sources come from Redis)."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from entail import reasoning


class RulesetCache:
    """A small LRU: compiling is the expensive part of a cold decision."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, reasoning.Ruleset] = OrderedDict()
        self._lock = Lock()

    def get(self, digest: str) -> reasoning.Ruleset | None:
        with self._lock:
            found = self._items.get(digest)
            if found is not None:
                self._items.move_to_end(digest)
            return found

    def put(self, digest: str, ruleset: reasoning.Ruleset) -> None:
        with self._lock:
            self._items[digest] = ruleset
            self._items.move_to_end(digest)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
