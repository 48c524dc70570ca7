"""Random sources of a chaos run: drawn from Hypothesis and recorded, or replayed.

Two streams per plan. The *decisions* (coins of ``rate`` triggers) shrink toward "does
not fire". The *draws* (``chaos.rng``, for the body) shrink toward the simplest value:
``random()`` toward 0.0, ``randrange(a, b)``/``randint(a, b)`` toward ``a``,
``choice(seq)`` toward ``seq[0]``, ``uniform(a, b)`` toward ``a``, ``getrandbits`` and
``randbytes`` toward zeros; ``shuffle`` and ``sample`` toward a fixed order. Replays
return the recorded values in order; past the end, decisions never fire and draws come
from a stream seeded by the plan's seed (so code that draws more than before still runs).
Replaying never imports Hypothesis.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

__all__ = ["BodyRandom", "DrawnRandom", "ReplayBodyRandom", "ReplayRandom", "drawn_body_random"]

_TOP = 2**53 - 1
#: The value a decision shrinks toward and a replay runs out to: no ``rate`` trigger fires.
NEVER = _TOP / 2**53
_STRATEGIES: dict[str, Any] = {}


def _strategy(name: str) -> Any:
    """A strategy built once per process (building one costs more than drawing from it)."""
    if not _STRATEGIES:
        from hypothesis import strategies as st

        _STRATEGIES["decision"] = st.integers(0, _TOP).map(lambda k: (_TOP - k) / 2**53)
        _STRATEGIES["float"] = st.integers(0, _TOP).map(lambda k: k / 2**53)
    return _STRATEGIES[name]


class DrawnRandom(random.Random):
    """``random()`` draws a decision from a Hypothesis ``data`` object and records it.

    Values shrink toward just below 1.0, so ``rate`` triggers shrink toward not firing,
    and Hypothesis prints each decision of the minimal example.
    """

    def __init__(self, data: Any) -> None:
        super().__init__(0)
        self._data = data
        self._strategy = _strategy("decision")
        self.decisions: list[float] = []

    def random(self) -> float:
        """The next fault decision, in [0, 1)."""
        value: float = self._data.draw(self._strategy, label="fault decision")
        self.decisions.append(value)
        return value


class ReplayRandom(random.Random):
    """``random()`` returns recorded decisions in order, then ``NEVER``."""

    def __init__(self, decisions: Iterable[float]) -> None:
        super().__init__(0)
        self._decisions = list(decisions)
        self._next = 0
        self.decisions: list[float] = []

    def random(self) -> float:
        """The next recorded decision."""
        value = self._decisions[self._next] if self._next < len(self._decisions) else NEVER
        self._next += 1
        self.decisions.append(value)
        return value


class BodyRandom(random.Random):
    """The body's ``chaos.rng``: every method derives from ``_float`` (``random()``) and
    ``_below(n)`` (an int in [0, n)), each recorded in ``draws``."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.draws: list[float | int] = []

    def random(self) -> float:
        """A float in [0, 1) that shrinks toward 0.0."""
        value = self._float()
        self.draws.append(value)
        return value

    def getrandbits(self, k: int) -> int:
        """``k`` random bits, shrinking toward 0."""
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        value = self._below(2**k) if k else 0
        self.draws.append(value)
        return value

    def _randbelow(self, n: int) -> int:
        value = self._below(n) if n > 0 else 0
        self.draws.append(value)
        return value

    def _float(self) -> float:
        raise NotImplementedError

    def _below(self, n: int) -> int:
        raise NotImplementedError


class _DrawnBodyRandom(BodyRandom):
    def __init__(self, data: Any, seed: int) -> None:
        super().__init__(seed)
        self._data = data

    def _float(self) -> float:
        value: float = self._data.draw(_strategy("float"), label="chaos.rng")
        return value

    def _below(self, n: int) -> int:
        from hypothesis import strategies as st

        value: int = self._data.draw(st.integers(0, n - 1), label="chaos.rng")
        return value


def drawn_body_random(data: Any, seed: int = 0) -> BodyRandom:
    """The body's ``chaos.rng`` for one generated plan, drawing from Hypothesis' ``data``."""
    return _DrawnBodyRandom(data, seed)


class ReplayBodyRandom(BodyRandom):
    """``chaos.rng`` for a replay: the recorded draws in order (a value of the wrong kind
    or range is replaced by the simplest one), then a stream seeded by ``seed``."""

    def __init__(self, draws: Iterable[float | int], seed: int) -> None:
        super().__init__(seed)
        self._recorded = list(draws)
        self._next = 0
        self._after = random.Random(seed)

    def _take(self) -> float | int | None:
        if self._next >= len(self._recorded):
            return None
        value = self._recorded[self._next]
        self._next += 1
        return value

    def _float(self) -> float:
        value = self._take()
        if value is None:
            return self._after.random()
        return float(value) if isinstance(value, float) and 0.0 <= value < 1.0 else 0.0

    def _below(self, n: int) -> int:
        value = self._take()
        if value is None:
            return self._after.randrange(n)
        return value if isinstance(value, int) and 0 <= value < n else 0
