"""A TTL cache, as a user would write it: entries live ``ttl`` seconds."""

from __future__ import annotations

import time
from typing import Any


class TTLCache:
    """Correct: expiry measured on the monotonic clock, which never jumps."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[Any, tuple[Any, float]] = {}

    def _now(self) -> float:
        return time.monotonic()

    def put(self, key: Any, value: Any) -> None:
        self._entries[key] = (value, self._now() + self.ttl)

    def get(self, key: Any) -> Any:
        value, expires = self._entries.get(key, (None, 0.0))
        if self._now() >= expires:
            self._entries.pop(key, None)
            return None
        return value


class WallClockTTLCache(TTLCache):
    """The bug: expiry on the wall clock, which NTP, a resumed VM or an operator can step
    forward (entries vanish early) or back (entries outlive their TTL)."""

    def _now(self) -> float:
        return time.time()
