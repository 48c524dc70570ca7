"""``ChaosClock``: a ``VirtualClock`` that applies a plan's scheduled faults on time."""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from pytest_resilience._clock import VirtualClock, _check_duration
from pytest_resilience._events import History

if TYPE_CHECKING:
    from faults.strategies import Family, Scheduled

__all__ = ["ChaosClock"]


class ChaosClock(VirtualClock):
    """A ``VirtualClock`` that, once started, applies each ``Scheduled`` fault when time
    reaches it: a sleep or ``advance`` stops at its time to apply it, and a read at or
    after its time applies it. An entry with a ``duration`` param is undone that many
    seconds later; the others stay until ``stack`` closes. Faults apply and are undone on
    the thread that built the clock (the run's), never on another thread that reads or
    advances it (such as a proxy's loop), so an injector never waits on the thread it
    runs on.
    """

    def __init__(self, scheduled: Sequence[Scheduled], families: Mapping[str, Family], *,
                 history: History | None, stack: ExitStack) -> None:
        super().__init__()
        self._pending = sorted(scheduled, key=lambda s: s.at)
        self._families = families
        self._history = history
        self._stack = stack
        self._owner = threading.get_ident()
        self._applying = False
        self._undo: list[tuple[float, int, ExitStack]] = []
        self._undo_seq = itertools.count()
        self.applied: list[Scheduled] = []
        self._next_at = math.inf

    def start(self) -> None:
        """Begin applying the scheduled faults (those due now apply at once)."""
        self._next_at = self._pending[0].at if self._pending else math.inf
        self.monotonic()

    def monotonic(self) -> float:
        """Virtual monotonic seconds, after applying or undoing any scheduled fault now due
        (clock drivers such as a fault proxy settle first)."""
        now = super().monotonic()
        if (now >= self._next_at and not self._applying and not self._settling
                and threading.get_ident() == self._owner):
            self._apply_due()
        return self._mono

    @property
    def next_scheduled(self) -> float:
        """When the next scheduled fault applies or is undone (``math.inf``: never)."""
        return self._next_at

    def apply_due_for_owner(self) -> None:
        """Apply (or undo) what is due now on behalf of the run's thread while every
        thread of the process waits; a fault proxy's loop calls it when it moves the
        clock to ``next_scheduled`` (the body blocked on the proxy)."""
        if not self._applying:
            self._apply_due()

    def advance(self, seconds: float) -> None:
        """Move both clocks forward, stopping at each scheduled time inside the step to
        apply (or undo) what is due then, so a fault's events carry its own time."""
        end = self._mono + _check_duration(seconds)
        if threading.get_ident() == self._owner and not self._applying:
            while self._next_at < end:  # each pass applies or undoes at least one entry
                super().advance(max(0.0, self._next_at - self._mono))
                self.monotonic()
        # Another thread (a proxy's loop) may have moved the clock past ``end`` meanwhile.
        super().advance(max(0.0, end - self._mono))
        self.monotonic()

    def time(self) -> float:
        """Virtual wall seconds, after applying any scheduled fault now due."""
        self.monotonic()
        return super().time()

    def _apply_due(self) -> None:
        self._applying = True
        try:
            while True:
                apply_at = self._pending[0].at if self._pending else math.inf
                undo_at = self._undo[0][0] if self._undo else math.inf
                if min(apply_at, undo_at) > self._mono:
                    break
                if undo_at <= apply_at:  # an entry ending when another starts ends first
                    heapq.heappop(self._undo)[2].close()
                    continue
                entry = self._pending.pop(0)
                scope = self._stack.enter_context(ExitStack())
                cm = self._families[entry.family].apply(entry, clock=self,
                                                        history=self._history)
                if cm is not None:
                    scope.enter_context(cm)
                if "duration" in entry.params:
                    until = entry.at + float(entry.params["duration"])
                    heapq.heappush(self._undo, (until, next(self._undo_seq), scope))
                self.applied.append(entry)
            self._next_at = min(self._pending[0].at if self._pending else math.inf,
                                self._undo[0][0] if self._undo else math.inf)
        finally:
            self._applying = False
