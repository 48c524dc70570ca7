"""Sliding windows for ``CircuitBreaker``: last N calls, or calls of the last N seconds."""

from __future__ import annotations

from collections import deque

__all__ = ["CountWindow", "TimeWindow"]


class CountWindow:
    """The outcomes of the last ``size`` calls with running totals: O(1) per call."""

    __slots__ = ("_failed", "_index", "_slow", "calls", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._failed = bytearray(size)
        self._slow = bytearray(size)
        self._index = 0
        self.calls = self.failures = self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one outcome, dropping the oldest once ``size`` are held."""
        i = self._index
        if self.calls == self.size:
            self.failures -= self._failed[i]
            self.slow -= self._slow[i]
        else:
            self.calls += 1
        self._failed[i], self._slow[i] = failed, slow
        self.failures += failed
        self.slow += slow
        self._index = (i + 1) % self.size

    def expire(self, now: float) -> None:
        """Nothing expires by time in a count window."""

    def reset(self) -> None:
        """Forget every outcome."""
        self.__init__(self.size)  # type: ignore[misc]


class TimeWindow:
    """The outcomes of calls that ended within the last ``size`` seconds (exact)."""

    __slots__ = ("_entries", "calls", "failures", "size", "slow")

    def __init__(self, size: float) -> None:
        self.size = size
        self._entries: deque[tuple[float, bool, bool]] = deque()
        self.calls = self.failures = self.slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one outcome ended at ``now``."""
        self.expire(now)
        self._entries.append((now, failed, slow))
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def expire(self, now: float) -> None:
        """Drop outcomes older than ``size`` seconds."""
        entries, horizon = self._entries, now - self.size
        while entries and entries[0][0] <= horizon:
            _, failed, slow = entries.popleft()
            self.calls -= 1
            self.failures -= failed
            self.slow -= slow

    def reset(self) -> None:
        """Forget every outcome."""
        self._entries.clear()
        self.calls = self.failures = self.slow = 0
