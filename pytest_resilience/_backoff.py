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


#: Retries whose delays a stateless ``Jittered`` lays out up front (later ones on demand).
_TABLE = 64


class Jittered:
    """A delay source: the backoff's capped delays spread by a jitter mode.

    ``full``: U(0, d). ``equal``: d/2 + U(0, d/2). ``decorrelated``: U(base, min(max,
    3 * previous)). ``none``: d. Jitter comes after the cap, so delays keep their spread
    even once the schedule has reached ``max``. Only ``decorrelated`` remembers the
    previous delay; the other modes may serve every call of a policy, and lay out their
    first delays as ``table[n - 1] = (offset, spread)``: the delay before retry ``n`` is
    ``offset + spread * U(0, 1)`` (the numbers ``random.uniform`` gives), with no draw when
    ``spread`` is 0 (no jitter, or a zero delay).
    """

    __slots__ = ("_fixed", "_previous", "backoff", "jitter", "random", "table")

    def __init__(self, backoff: Backoff, jitter: str, rng: random.Random) -> None:
        self.backoff = backoff
        self.jitter = jitter
        self.random = rng.random
        self._previous = backoff.base
        # The share of each delay that is not jittered (1.0: no jitter at all).
        self._fixed = {"full": 0.0, "equal": 0.5}.get(jitter, 1.0)
        self.table: tuple[tuple[float, float], ...] = (
            () if jitter == "decorrelated"
            else tuple(self._spread(backoff.delay(n)) for n in range(1, _TABLE + 1)))

    def _spread(self, capped: float) -> tuple[float, float]:
        offset = capped * self._fixed
        return offset, capped - offset

    def next(self, retry: int) -> float:
        """The delay before retry number ``retry`` (from 1)."""
        backoff = self.backoff
        if self.jitter == "decorrelated":
            base = backoff.base
            high = min(backoff.max, max(base, self._previous * 3))
            self._previous = base + (high - base) * self.random()  # random.uniform
            return self._previous
        offset, spread = (self.table[retry - 1] if retry <= _TABLE
                          else self._spread(backoff.delay(retry)))
        return offset + spread * self.random() if spread else offset
