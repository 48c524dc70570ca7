"""``ChaosClock``: a ``VirtualClock`` that applies a plan's scheduled faults on time."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from pytest_resilience.clock import VirtualClock
from pytest_resilience.events import History

if TYPE_CHECKING:
    from faults.strategies import Family, Scheduled

__all__ = ["ChaosClock"]


class ChaosClock(VirtualClock):
    """A ``VirtualClock`` that applies each ``Scheduled`` fault once time reaches it: when
    a sleep or ``advance`` passes its time, or the clock is first read at or after it.
    The faults' context managers go on ``stack``."""

    def __init__(self, scheduled: Sequence[Scheduled], families: Mapping[str, Family], *,
                 history: History | None, stack: ExitStack) -> None:
        super().__init__()
        self._pending = sorted(scheduled, key=lambda s: s.at)
        self._families = families
        self._history = history
        self._stack = stack
        self._applying = False
        self.applied: list[Scheduled] = []
        self._next_at = self._pending[0].at if self._pending else math.inf

    def monotonic(self) -> float:
        """Virtual monotonic seconds, after applying any scheduled fault now due."""
        if self._mono >= self._next_at and not self._applying:
            self._apply_due()
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward, then apply the scheduled faults now due."""
        super().advance(seconds)
        self.monotonic()

    def time(self) -> float:
        """Virtual wall seconds, after applying any scheduled fault now due."""
        self.monotonic()
        return super().time()

    def _apply_due(self) -> None:
        self._applying = True
        try:
            while self._pending and self._pending[0].at <= self._mono:
                entry = self._pending.pop(0)
                cm = self._families[entry.family].apply(entry, clock=self,
                                                        history=self._history)
                if cm is not None:
                    self._stack.enter_context(cm)
                self.applied.append(entry)
            self._next_at = self._pending[0].at if self._pending else math.inf
        finally:
            self._applying = False
