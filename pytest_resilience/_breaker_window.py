"""Sliding windows for ``CircuitBreaker``: last N calls, or calls of the last N seconds.

Both keep running totals (``calls``, ``failures``, ``slow``), changed under the breaker's
lock. A count window also takes successes without the lock: the breaker's hot path
draws a ticket from ``ticks`` (an atomic counter) for each success, and the window folds
the successes counted since into its totals whenever it is read or written under the
lock. A success lowers both rates of a count window, so only the one that brings it to
``minimum`` calls can make the breaker trip: the one whose ticket is ``crossing``.
"""

from __future__ import annotations

import itertools
from collections import deque

__all__ = ["CountWindow", "TimeWindow"]

_FAILED, _SLOW, _BOTH = 1, 2, 3


class CountWindow:
    """The outcomes of the last ``size`` calls with running totals: O(1) per call.

    One byte per call: bit 0 failed, bit 1 slow. ``minimum`` is the breaker's
    ``minimum_calls``.
    """

    __slots__ = ("_codes", "_index", "_last", "calls", "crossing", "failures", "minimum",
                 "size", "slow", "ticks")

    _codes: bytearray
    _index: int
    _last: int
    calls: int
    crossing: int
    failures: int
    slow: int
    ticks: itertools.count[int]

    def __init__(self, size: int, minimum: int = 1) -> None:
        self.size = size
        self.minimum = minimum
        self.reset()

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add one outcome, dropping the oldest once ``size`` are held."""
        self._fold()
        i = self._index
        if self.calls == self.size:
            old = self._codes[i]
            self.failures -= old & _FAILED
            self.slow -= old >> 1
        else:
            self.calls += 1
        self._codes[i] = failed | (slow << 1)
        self.failures += failed
        self.slow += slow
        self._index = i + 1 if i + 1 < self.size else 0
        self._aim()

    def expire(self, now: float) -> None:
        """Nothing expires by time in a count window; folds the uncounted successes."""
        self._fold()

    def reset(self) -> None:
        """Forget every outcome."""
        self._codes = bytearray(self.size)
        self._index = self.calls = self.failures = self.slow = 0
        self.ticks = itertools.count()
        self._last = next(self.ticks)
        self._aim()

    def _aim(self) -> None:
        # The ticket of the success that brings the window to ``minimum`` calls.
        self.crossing = self._last + self.minimum - self.calls if self.calls < self.minimum else -1

    def _fold(self) -> None:
        """Count the successes that drew a ticket since the last fold."""
        ticket = next(self.ticks)
        k = ticket - self._last - 1
        self._last = ticket
        if k:
            size, i = self.size, self._index
            if k >= size:
                self._codes = bytearray(size)
                self.failures = self.slow = 0
            else:
                codes = self._codes
                end = i + k
                dropped = codes[i:end] + codes[:end - size] if end > size else codes[i:end]
                both = dropped.count(_BOTH)
                self.failures -= dropped.count(_FAILED) + both
                self.slow -= dropped.count(_SLOW) + both
                if end > size:
                    codes[i:] = bytes(size - i)
                    codes[:end - size] = bytes(end - size)
                else:
                    codes[i:end] = bytes(k)
            self.calls = min(size, self.calls + k)
            self._index = (i + k) % size
        self._aim()


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
