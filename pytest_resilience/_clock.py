"""Clocks: the ``Clock`` protocol, the real ``SystemClock`` and the test ``VirtualClock``.

Every component takes ``clock=``. ``VirtualClock`` sleeps advance virtual time at once:
synchronous sleeps return immediately, and asyncio tasks sleeping on one clock wake in
deadline order as soon as the event loop has nothing else to run (trio's ``MockClock``
with autojump).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_WALL_START", "Clock", "ClockDriver", "SystemClock", "VirtualClock"]

#: Wall time a ``VirtualClock`` starts at unless told otherwise: 2024-01-01T00:00:00Z.
#: Fixed, so that event histories replay identically.
DEFAULT_WALL_START = 1_704_067_200.0

# Loop iterations the autojump waits for other ready callbacks before it moves time
# when the loop does not expose its ready queue (uvloop and other loops).
_OPAQUE_LOOP_SPINS = 8
# Upper bound on iterations spent waiting for a busy loop to settle before a jump.
_MAX_SETTLE_SPINS = 10_000
_INF = math.inf
# With the GIL, ``self._mono += seconds`` on floats is one uninterruptible step: no
# thread switch can fall between the read and the write (the interpreter only switches
# at calls, function starts and backward jumps). A free-threaded build takes the lock.
_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()


@runtime_checkable
class Clock(Protocol):
    """What components need from a clock."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (may jump)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the current task for ``seconds``."""
        ...


def _check_duration(seconds: float, what: str = "seconds") -> float:
    if type(seconds) is float and 0.0 <= seconds < math.inf:  # the hot path
        return seconds
    from pytest_resilience import _validate

    return _validate.seconds(seconds, what, what="a valid duration")


def _number(value: float, name: str, *, positive: bool = False, what: str = "a finite number",
            accepted: str | None = None) -> float:
    from pytest_resilience import _validate

    return _validate.number(value, name, low=0.0 if positive else None, low_open=positive,
                            what=what, accepted=accepted)


class SystemClock:
    """The real clocks of the process: ``time.monotonic``, ``time.time``, real sleeps."""

    __slots__ = ()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def time(self) -> float:
        """``time.time()``."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``; a zero delay returns without a system call."""
        if _check_duration(seconds) > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(_check_duration(seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class ClockDriver(Protocol):
    """Something that keeps its own timers on a ``VirtualClock`` and does work on them
    (a fault proxy's loop). The clock lets it catch up from the thread that drives time.
    """

    def next_deadline(self) -> float:
        """The virtual time of its earliest pending timer (``math.inf``: none)."""
        ...

    def settle(self) -> bool:
        """Do everything due now and everything its sockets hold now, then return
        whether anything was done."""
        ...


# Passes of settling drivers one clock step may take (each does work, or the step ends).
_MAX_SETTLE_PASSES = 10_000


@dataclass(order=True)
class _Waiter:
    deadline: float
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class VirtualClock:
    """A clock whose time moves only when asked to: by sleeps, ``advance``, ``skew``.

    ``monotonic()`` starts at ``start`` and never decreases. ``time()`` starts at
    ``wall_start`` and follows monotonic time at ``rate`` (see ``drift``), shifted by any
    ``skew``. Thread-safe; asyncio sleepers wake in deadline order. ``set_alarm`` lets
    one listener act at a deadline (the chaos runner applies scheduled faults with it).
    """

    def __init__(self, start: float = 0.0, *, wall_start: float = DEFAULT_WALL_START) -> None:
        start = _number(start, "start")
        wall_start = _number(wall_start, "wall_start")
        self._lock = threading.RLock()
        self._mono = start
        self._wall_anchor = wall_start
        self._mono_anchor = start
        self._rate = 1.0
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._ticking: set[asyncio.AbstractEventLoop] = set()
        self._alarm_at = math.inf
        self._alarm: Callable[[], None] | None = None
        self._ringing = False
        self._drivers: tuple[ClockDriver, ...] = ()
        self._driving_thread: int | None = None
        self._settling = False
        #: True while a fault proxy's loop acts for the driving thread, which sleeps on a
        #: socket meanwhile: an alarm rung then may do what that thread would have done.
        self.standing_in = False
        # Sleeps may skip advance() unless a subclass changed what advancing does.
        self._bare = _GIL and type(self).advance is VirtualClock.advance

    # -- reading -------------------------------------------------------------------
    def monotonic(self) -> float:
        """Virtual monotonic seconds (drivers catch up first, on the driving thread)."""
        if self._drivers and threading.get_ident() == self._driving_thread:
            self._settle()
        if self._mono >= self._alarm_at:
            self._ring()
        return self._mono

    def time(self) -> float:
        """Virtual wall seconds since the epoch."""
        if self._drivers and threading.get_ident() == self._driving_thread:
            self._settle()
        if self._mono >= self._alarm_at:
            self._ring()
        with self._lock:
            return self._wall_anchor + (self._mono - self._mono_anchor) * self._rate

    # -- the alarm -----------------------------------------------------------------
    def set_alarm(self, at: float, callback: Callable[[], None] | None) -> None:
        """Call ``callback()`` once monotonic time reaches ``at`` (``None`` clears it).

        One alarm per clock; setting another replaces it. A step of ``advance``/``sleep``
        (or an asyncio autojump) that would cross ``at`` stops there and calls it first,
        so what it does happens at its own time. Until the callback re-arms (a later
        ``at``) or clears the alarm, it is called again on every read, on the thread
        that reads; steps no longer stop for it. Reads inside the callback do not call
        it again.
        """
        at = float(at)
        if math.isnan(at):
            raise ValueError(f"at={at!r} is not a time. Pass monotonic seconds.")
        with self._lock:
            self._alarm_at = math.inf if callback is None else at
            self._alarm = callback

    @property
    def alarm_at(self) -> float:
        """When the alarm is set to ring (``math.inf``: no alarm)."""
        return self._alarm_at

    def _ring(self) -> None:
        callback = self._alarm
        if callback is None or self._ringing:
            return  # the callback reading the clock does not call itself again
        self._ringing = True
        try:
            callback()
        finally:
            self._ringing = False

    # -- drivers -------------------------------------------------------------------
    def add_driver(self, driver: ClockDriver) -> Callable[[], None]:
        """Let ``driver`` keep timers on this clock; returns a function that removes it.

        The thread that adds the first driver drives time: each of its reads, sleeps
        and ``advance`` steps first lets every driver settle, and a step stops at each
        driver deadline inside it (time is set to that deadline, the drivers settle,
        the step goes on). Other threads read and move the clock as before.
        """
        with self._lock:
            if not self._drivers:
                self._driving_thread = threading.get_ident()
            self._drivers = (*self._drivers, driver)

        def remove() -> None:
            with self._lock:
                self._drivers = tuple(d for d in self._drivers if d is not driver)
                if not self._drivers:
                    self._driving_thread = None

        return remove

    @property
    def driver_deadline(self) -> float:
        """The earliest pending deadline of any driver (``math.inf``: none)."""
        return min((d.next_deadline() for d in self._drivers), default=math.inf)

    def _settle(self) -> None:
        """Let every driver settle until a whole pass finds nothing to do."""
        if self._settling:
            return
        self._settling = True
        try:
            for _ in range(_MAX_SETTLE_PASSES):
                worked = False
                for driver in self._drivers:  # every driver, even after one worked
                    worked = driver.settle() or worked
                if not worked:
                    return
        finally:
            self._settling = False

    def _driven_step(self, end: float) -> None:
        """Move to ``end`` on the driving thread, stopping at each driver deadline and at
        the alarm inside the step (the drivers settle at each stop)."""
        self._settle()
        for _ in range(_MAX_SETTLE_PASSES):
            if self._mono >= end:
                break
            alarm = self._alarm_at if self._mono < self._alarm_at else math.inf
            self._move_to(max(min(end, self.driver_deadline, alarm), self._mono))
            if self._mono >= self._alarm_at:
                self._ring()
            self._settle()
        self._move_to(end)
        if self._mono >= self._alarm_at:
            self._ring()

    def _move_to(self, when: float) -> None:
        with self._lock:
            self._mono = max(self._mono, when)
            due = self._pop_due(self._mono)
        _wake(due)

    @property
    def rate(self) -> float:
        """Wall seconds that pass per monotonic second (1.0 unless ``drift`` changed it)."""
        return self._rate

    # -- moving time ---------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` and wake asyncio sleepers now due.

        With an alarm set, the step stops at the alarm to call it, then goes on to the
        time it aimed for (no further, if the callback moved the clock meanwhile).
        """
        seconds = _check_duration(seconds)
        if self._drivers and threading.get_ident() == self._driving_thread \
                and not self._settling:
            self._driven_step(self._mono + seconds)
            return
        with self._lock:
            if self._alarm_at == math.inf:
                self._mono += seconds
                due = self._pop_due(self._mono)
                end = self._mono
            else:
                end = self._mono + seconds
                due = []
        _wake(due)
        while self._mono < end:
            with self._lock:
                alarm = self._alarm_at
                self._mono = max(self._mono, alarm if self._mono < alarm < end else end)
                due = self._pop_due(self._mono)
            _wake(due)
            if self._mono >= self._alarm_at:
                self._ring()
        if self._mono >= self._alarm_at:
            self._ring()

    def sleep(self, seconds: float) -> None:
        """Advance virtual time by ``seconds`` and return at once."""
        if seconds.__class__ is not float or not 0.0 <= seconds < _INF:
            seconds = _check_duration(seconds)  # other types, NaN, negative, infinite
        if seconds:
            if self._bare and not self._waiters and self._alarm_at == _INF \
                    and not self._drivers:
                # Nobody sleeps on a loop, no alarm is set and no fault proxy drives
                # time: nothing to wake or ring, and the addition is atomic (see _GIL).
                # A task that starts sleeping meanwhile is woken by its loop's
                # autojump, as for any sleeper.
                self._mono += seconds
                return
            self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        """Suspend until virtual time reaches now + ``seconds``.

        The clock jumps to the earliest pending deadline once the loop has no other
        ready work, so concurrent sleepers wake in deadline order without real waiting.
        """
        seconds = _check_duration(seconds)
        if seconds == 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            heapq.heappush(self._waiters, _Waiter(self._mono + seconds, next(self._seq), fut))
            start_tick = loop not in self._ticking
            self._ticking.add(loop)
        if start_tick:
            loop.call_soon(self._tick, loop, 0)
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()

    def skew(self, seconds: float) -> None:
        """Jump wall time by ``seconds`` (negative steps it back); monotonic is untouched."""
        seconds = _number(seconds, "seconds", accepted="a finite offset in seconds")
        with self._lock:
            self._wall_anchor += seconds

    def drift(self, rate: float) -> None:
        """From now on, wall time advances ``rate`` seconds per monotonic second.

        ``rate=1.0`` keeps the clocks in step, ``1.001`` runs wall time 0.1% fast,
        ``0.5`` at half speed.
        """
        rate = _number(rate, "rate", positive=True, what="a valid drift rate", accepted=(
            "a finite number > 0 (1.0 = no drift); use skew() to step wall time backwards"))
        with self._lock:
            self._wall_anchor = self.time()
            self._mono_anchor = self._mono
            self._rate = rate

    @property
    def pending_sleepers(self) -> int:
        """How many asyncio tasks are waiting on this clock."""
        with self._lock:
            return sum(1 for w in self._waiters if not w.future.done())

    # -- autojump ------------------------------------------------------------------
    def _pop_due(self, now: float) -> list[_Waiter]:
        due: list[_Waiter] = []
        while self._waiters and self._waiters[0].deadline <= now:
            due.append(heapq.heappop(self._waiters))
        return due

    def _tick(self, loop: asyncio.AbstractEventLoop, spins: int) -> None:
        ready = getattr(loop, "_ready", None)
        busy = len(ready) > 0 if ready is not None else spins < _OPAQUE_LOOP_SPINS
        if busy and spins < _MAX_SETTLE_SPINS:
            loop.call_soon(self._tick, loop, spins + 1)
            return
        with self._lock:
            while self._waiters and self._waiters[0].future.done():
                heapq.heappop(self._waiters)  # cancelled sleepers
            if not self._waiters:
                self._ticking.discard(loop)
                return
            deadline, alarm = self._waiters[0].deadline, self._alarm_at
            if self._drivers and threading.get_ident() == self._driving_thread:
                driven = True
            else:
                driven = False
                self._mono = max(self._mono,
                                 alarm if self._mono < alarm < deadline else deadline)
                due = self._pop_due(self._mono)
        if driven:
            self._driven_step(deadline)  # stops at driver deadlines and the alarm
        else:
            _wake(due)
            if self._mono >= self._alarm_at:
                self._ring()
        loop.call_soon(self._tick, loop, 0)

    def __repr__(self) -> str:
        return f"VirtualClock(monotonic={self._mono!r}, time={self.time()!r})"


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _wake(waiters: list[_Waiter]) -> None:
    for waiter in waiters:
        fut = waiter.future
        if fut.done():
            continue
        loop = fut.get_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            _resolve(fut)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_resolve, fut)
