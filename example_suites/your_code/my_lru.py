"""An LRU cache, as a user would write it: at capacity, the least recently used entry goes."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class LRUCache:
    """Correct: a read or a write makes an entry the most recent; the oldest is evicted."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        if key not in self._data:
            return None
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: Any, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.capacity:
            self._data.popitem(last=False)


class MostRecentLRUCache(LRUCache):
    """The bug: ``popitem()`` defaults to ``last=True``, so the *most* recent entry goes."""

    def put(self, key: Any, value: Any) -> None:
        if key not in self._data and len(self._data) >= self.capacity:
            self._data.popitem()
        self._data[key] = value
