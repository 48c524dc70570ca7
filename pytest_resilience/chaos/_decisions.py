"""Random sources for fault decisions: drawn from Hypothesis and recorded, or replayed."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

__all__ = ["DrawnRandom", "ReplayRandom"]

_TOP = 2**53 - 1
#: The value a decision shrinks toward and a replay runs out to: no ``rate`` trigger fires.
NEVER = _TOP / 2**53


class DrawnRandom(random.Random):
    """``random()`` draws from a Hypothesis ``data`` object and records each value.

    Values shrink toward just below 1.0, so ``rate`` triggers shrink toward not firing,
    and Hypothesis prints each decision of the minimal example. Every other ``Random``
    method derives from ``random()``.
    """

    def __init__(self, data: Any) -> None:
        super().__init__(0)
        from hypothesis import strategies as st

        self._data = data
        self._strategy = st.integers(0, _TOP).map(lambda k: (_TOP - k) / 2**53)
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
