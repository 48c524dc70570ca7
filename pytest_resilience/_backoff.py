"""Backoff schedules and jitter for ``Retry``: the cap is applied first, jitter after it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from pytest_resilience import _validate

__all__ = ["JITTERS", "Backoff", "Jitter", "Jittered"]

Jitter = Literal["full", "equal", "decorrelated", "none"]
JITTERS: tuple[str, ...] = ("full", "equal", "decorrelated", "none")


def _non_negative(name: str, value: float) -> float:
    return _validate.number(value, name, low=0.0, what="a valid delay")


@dataclass(frozen=True, slots=True)
class Backoff:
    """A capped delay schedule: ``delay(n)`` is the wait before retry ``n`` (from 1)."""

    kind: Literal["exponential", "linear", "constant"]
    base: float
    factor: float
    step: float
    max: float

    @classmethod
    def exponential(cls, *, base: float = 0.1, factor: float = 2.0, max: float = 10.0) -> Backoff:
        """``base * factor**(n-1)``, capped at ``max``."""
        factor = _validate.number(factor, "factor", low=1.0, what="a valid growth factor",
                                  accepted="a finite number >= 1")
        return cls._make("exponential", base, factor, 0.0, max)

    @classmethod
    def linear(cls, *, base: float = 0.1, step: float = 0.1, max: float = 10.0) -> Backoff:
        """``base + step*(n-1)``, capped at ``max``."""
        return cls._make("linear", base, 1.0, _non_negative("step", step), max)

    @classmethod
    def constant(cls, delay: float = 0.1) -> Backoff:
        """The same ``delay`` before every retry (0 means retry at once, without sleeping)."""
        value = _non_negative("delay", delay)
        return cls._make("constant", value, 1.0, 0.0, value)

    @classmethod
    def _make(cls, kind: str, base: float, factor: float, step: float, cap: float) -> Backoff:
        base = _non_negative("base", base)
        cap = _non_negative("max", cap)
        if cap < base:
            raise ValueError(f"max={cap!r} is below base={base!r}. Pass max >= base.")
        return cls(kind, base, float(factor), step, cap)  # type: ignore[arg-type]

    def delay(self, retry: int) -> float:
        """The capped delay before retry number ``retry`` (1 = the first retry), no jitter."""
        if self.kind == "exponential":
            if self.base == 0:
                return 0.0
            try:
                return min(self.max, self.base * self.factor ** (retry - 1))
            except OverflowError:  # factor**n overflows long after the cap is reached
                return self.max
        if self.kind == "linear":
            return min(self.max, self.base + self.step * (retry - 1))
        return self.base


class Jittered:
    """One call's delay source: the backoff's capped delays spread by a jitter mode.

    ``full``: U(0, d). ``equal``: d/2 + U(0, d/2). ``decorrelated``: U(base, min(max,
    3 * previous)). ``none``: d. Jitter comes after the cap, so delays keep their spread
    even once the schedule has reached ``max``.
    """

    __slots__ = ("_backoff", "_jitter", "_previous", "_rng")

    def __init__(self, backoff: Backoff, jitter: str, rng: random.Random) -> None:
        self._backoff = backoff
        self._jitter = jitter
        self._rng = rng
        self._previous = backoff.base

    def next(self, retry: int) -> float:
        """The delay before retry number ``retry``."""
        backoff, jitter = self._backoff, self._jitter
        if jitter == "decorrelated":
            high = min(backoff.max, max(backoff.base, self._previous * 3))
            self._previous = self._rng.uniform(backoff.base, high)
            return self._previous
        capped = backoff.delay(retry)
        if jitter == "none" or capped == 0:
            return capped
        if jitter == "full":
            return self._rng.uniform(0.0, capped)
        return capped / 2 + self._rng.uniform(0.0, capped / 2)
