"""``RetryBudget``: at most a share of extra calls across a sliding window."""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

from pytest_resilience import _validate
from pytest_resilience._clock import Clock

if TYPE_CHECKING:
    from pytest_resilience._storage import BudgetStore, Storage

__all__ = ["RetryBudget"]

_BUCKETS = 10


class RetryBudget:
    """Allows retries while ``retries <= ratio * calls + min_retries`` over ``window`` seconds.

    Share one budget between the ``Retry`` policies of a service so that a fleet of
    clients cannot multiply its load during an outage (gRPC/Finagle retry budgets).
    Counts live in ten buckets of ``window / 10`` seconds each. With
    ``storage=RedisStorage(...)`` every budget of the same ``name`` shares its counts,
    so the budget caps the retries of the whole fleet.
    """

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        window: float = 10.0,
        min_retries: int = 10,
        name: str = "retry-budget",
        clock: Clock | None = None,
        storage: Storage | None = None,
    ) -> None:
        ratio = _validate.number(ratio, "ratio", low=0.0, what="a valid retry ratio",
                                 accepted="a number >= 0 (0.2 allows 20% extra calls)")
        window = _validate.seconds(window, "window", positive=True, accepted="seconds > 0")
        min_retries = _validate.count(min_retries, "min_retries", low=0)
        clock = _validate.clock(clock)
        self.ratio = float(ratio)
        self.window = float(window)
        self.min_retries = min_retries
        self.name = name
        self.clock: Clock = clock
        self._width = self.window / _BUCKETS
        self._calls = [0] * _BUCKETS
        self._retries = [0] * _BUCKETS
        self._slot = math.floor(self.clock.monotonic() / self._width)
        self._lock = threading.Lock()
        self.storage = _validate.storage(storage)
        self._store: BudgetStore | None = None
        if storage is not None:
            self._store = storage.budget_store(self)

    def _roll(self) -> int:
        slot = math.floor(self.clock.monotonic() / self._width)
        gap = slot - self._slot
        if gap > 0:
            for step in range(1, min(gap, _BUCKETS) + 1):
                index = (self._slot + step) % _BUCKETS
                self._calls[index] = 0
                self._retries[index] = 0
            self._slot = slot
        return self._slot % _BUCKETS

    def record_call(self) -> None:
        """Count a first attempt."""
        if self._store is not None:
            self._store.record_call()
            return
        with self._lock:
            self._calls[self._roll()] += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget; ``False`` when it is used up."""
        if self._store is not None:
            return self._store.try_spend()
        with self._lock:
            index = self._roll()
            if sum(self._retries) + 1 > self.ratio * sum(self._calls) + self.min_retries:
                return False
            self._retries[index] += 1
            return True

    @property
    def available(self) -> int:
        """Retries the budget would allow right now."""
        if self._store is not None:
            return self._store.available()
        with self._lock:
            self._roll()
            allowed = self.ratio * sum(self._calls) + self.min_retries - sum(self._retries)
            return max(0, math.floor(allowed))

    def __repr__(self) -> str:
        return f"RetryBudget(ratio={self.ratio}, window={self.window}, available={self.available})"
