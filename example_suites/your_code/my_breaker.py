"""A circuit breaker, as a user would write it: after ``threshold`` failures in a row it
refuses calls, and ``reset_after`` seconds later lets one trial call through."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class BreakerOpen(Exception):
    """Raised instead of calling a dependency that is failing."""


def unreachable() -> str:
    """The dependency the breaker protects, during an outage."""
    raise ConnectionError("upstream is down")


class Breaker:
    """Correct: OPEN for ``reset_after`` seconds, then one trial (half-open)."""

    def __init__(self, threshold: int = 3, reset_after: float = 30.0) -> None:
        self.threshold = threshold
        self.reset_after = reset_after
        self.failures = 0
        self.opened_at: float | None = None

    def _trial_allowed(self) -> bool:
        assert self.opened_at is not None
        return time.monotonic() - self.opened_at >= self.reset_after

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.opened_at is not None and not self._trial_allowed():
            raise BreakerOpen("circuit open")
        try:
            result = fn(*args)
        except Exception:
            self.failures += 1
            if self.opened_at is not None or self.failures >= self.threshold:
                self.opened_at = time.monotonic()  # open, or open again after a trial
            raise
        self.failures, self.opened_at = 0, None
        return result


class StuckBreaker(Breaker):
    """The bug: once open it never half-opens, so it never finds out the upstream is back."""

    def _trial_allowed(self) -> bool:
        return False
