"""``FaultSchedule``: applies a plan's scheduled faults on a ``VirtualClock``, on time.

It listens through the clock's alarm (``VirtualClock.set_alarm``) instead of reading the
clock's internals: a sleep or ``advance`` that crosses an entry's time stops there to
apply it, and a read at or after that time applies it.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import final

from faults import Scheduled
from faults.families import Family
from pytest_resilience import History, VirtualClock

__all__ = ["FaultSchedule"]


@final
class FaultSchedule:
    """Applies each ``Scheduled`` entry once ``clock`` reaches its time, from ``start()``
    until the schedule is exited (a context manager).

    An entry with a ``duration`` param is undone that many seconds later; the others
    when the schedule exits (last applied, first undone). Entries apply and are undone
    on the thread that built the schedule (the run's), never on another thread that
    reads or advances the clock (such as a proxy's loop), so an injector never waits on
    the thread it runs on; that thread's next read applies what is due.
    """

    def __init__(self, scheduled: Sequence[Scheduled], families: Mapping[str, Family], *,
                 clock: VirtualClock, history: History | None) -> None:
        self.clock = clock
        self._pending = sorted(scheduled, key=lambda s: s.at)
        self._families = families
        self._history = history
        self._stack = ExitStack()
        self._owner = threading.get_ident()
        self._busy = False
        self._undo: list[tuple[float, int, ExitStack]] = []
        self._undo_seq = itertools.count()
        self.applied: list[Scheduled] = []

    def start(self) -> FaultSchedule:
        """Begin applying the scheduled faults (those due now apply at once)."""
        self._rearm()
        self.clock.monotonic()
        return self

    def close(self) -> None:
        """Stop applying; undo every applied fault still in place (last first)."""
        self._busy = True  # nothing applies while faults are undone
        self.clock.set_alarm(math.inf, None)
        self._stack.close()

    def __enter__(self) -> FaultSchedule:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _rearm(self) -> None:
        at = min(self._pending[0].at if self._pending else math.inf,
                 self._undo[0][0] if self._undo else math.inf)
        self.clock.set_alarm(at, None if at == math.inf else self._due)

    def _due(self) -> None:
        if self._busy or threading.get_ident() != self._owner:
            return
        self._busy = True
        try:
            while True:
                now = self.clock.monotonic()
                apply_at = self._pending[0].at if self._pending else math.inf
                undo_at = self._undo[0][0] if self._undo else math.inf
                if min(apply_at, undo_at) > now:
                    break
                if undo_at <= apply_at:  # an entry ending when another starts ends first
                    heapq.heappop(self._undo)[2].close()
                    continue
                entry = self._pending.pop(0)
                scope = self._stack.enter_context(ExitStack())
                cm = self._families[entry.family].apply(entry, clock=self.clock,
                                                        history=self._history)
                if cm is not None:
                    scope.enter_context(cm)
                if "duration" in entry.params:
                    until = entry.at + float(entry.params["duration"])
                    heapq.heappush(self._undo, (until, next(self._undo_seq), scope))
                self.applied.append(entry)
            self._rearm()
        finally:
            self._busy = False
