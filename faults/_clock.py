"""Clock faults: skew, jump and drift, on a ``VirtualClock`` or on the process's clocks.

With ``clock=`` a ``VirtualClock``, the fault moves that clock. Without it, the fault moves
the process's real clocks for third-party code:

- wall time (``time.time``, ``time.time_ns``, ``datetime.now``/``utcnow``/``today``,
  ``time.localtime``/``gmtime``/``strftime``) through time-machine's C-level patch, which
  also reaches early-bound ``time.time`` references;
- monotonic time (``time.monotonic``, ``time.monotonic_ns``; ``target="monotonic"`` or
  ``"both"``) by rebinding every reference to the real functions found with
  ``gc.get_referrers``: the ``time`` module, ``from time import monotonic`` aliases,
  default arguments (``cachetools.TTLCache(timer=time.monotonic)``), keyword defaults,
  ``functools.partial`` objects, instance attributes and slots.

The event loop's own clock (``loop.time()``) and the stdlib's waiting machinery
(``threading``, ``queue``, ``asyncio``, ...) stay on real time, so asyncio sleeps and
timeouts neither hang nor fire early. Everything is undone when the block ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from faults._clock_rebind import DEFAULT_EXCLUDE, Ref, find_refs
from pytest_resilience import Clock, History, SystemClock, VirtualClock, emit, validate
from pytest_resilience.kinds import CLOCK_SKEW, FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED
from pytest_resilience.patching import Patch, patch

if TYPE_CHECKING:
    import time_machine

__all__ = ["ClockFault", "Target", "drift", "jump", "skew"]

Target = Literal["wall", "monotonic", "both"]
_TARGETS: tuple[str, ...] = ("wall", "monotonic", "both")
_NS = 1_000_000_000
#: Bounds that keep every clock (and time-machine's datetime arithmetic) in range.
MAX_SHIFT = 1e10  # seconds, about 317 years
MAX_EPOCH = 253_402_300_799.0  # 9999-12-31T23:59:59Z
MAX_RATE = 1e6

_REAL_MONOTONIC = time.monotonic
_REAL_MONOTONIC_NS = time.monotonic_ns


@dataclass(frozen=True)
class _Shift:
    """One fault's change to monotonic time: ``anchor + (t - anchor) * rate + seconds``."""

    seconds: float
    rate: float
    anchor: float  # the monotonic time (as the faults below saw it) when it started


class _Monotonic:
    """The process-wide monotonic shifts; installed while any fault holds one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.shifts: dict[int, _Shift] = {}
        self.chain: tuple[_Shift, ...] = ()  # applied in the order the faults started
        self.refs: list[Ref] = []
        self.loop_time: Patch | None = None

    def add(self, key: int, exclude: tuple[str, ...], *, seconds: float = 0.0,
            rate: float = 1.0) -> list[str]:
        with self.lock:
            if not self.shifts:
                self._install(exclude)
            anchor = self.now(_REAL_MONOTONIC())
            self.shifts[key] = _Shift(seconds, rate, anchor)
            self.chain = tuple(self.shifts.values())
            return [r.where for r in self.refs]

    def remove(self, key: int) -> None:
        with self.lock:
            if self.shifts.pop(key, None) is None:
                return
            self.chain = tuple(self.shifts.values())
            if not self.shifts:
                self._uninstall()

    def now(self, real: float) -> float:
        """Monotonic time with every active shift applied to the real reading ``real``."""
        t = real
        for shift in self.chain:
            t = shift.anchor + (t - shift.anchor) * shift.rate + shift.seconds
        return t

    def _install(self, exclude: tuple[str, ...]) -> None:
        skip = [globals()]
        pairs = ((_REAL_MONOTONIC, _monotonic), (_REAL_MONOTONIC_NS, _monotonic_ns))
        self.refs = []
        for real, fake in pairs:
            for ref in find_refs(real, exclude=exclude, skip=skip):
                ref.swap(fake)
                self.refs.append(ref)
        # the event loop reads time.monotonic late: keep its timers on the real clock
        self.loop_time = patch(asyncio.BaseEventLoop, "time", _loop_time)

    def _uninstall(self) -> None:
        for ref in reversed(self.refs):
            ref.restore()
        self.refs = []
        if self.loop_time is not None:
            self.loop_time.restore()
            self.loop_time = None


_MONO = _Monotonic()


def _monotonic() -> float:
    """``time.monotonic`` with the active skews and drifts applied."""
    return _MONO.now(_REAL_MONOTONIC())


def _monotonic_ns() -> int:
    """``time.monotonic_ns`` with the active skews and drifts applied."""
    real = _REAL_MONOTONIC_NS()
    return real + round((_MONO.now(real / _NS) - real / _NS) * _NS)


def _loop_time(self: asyncio.BaseEventLoop) -> float:
    return _REAL_MONOTONIC()


def _real_time_ns() -> int:
    import time_machine

    hatch = time_machine.escape_hatch
    return hatch.time.time_ns() if hatch.is_travelling() else time.time_ns()


def _wall_traveller_class() -> Callable[[Callable[[], int], int, float], time_machine.Traveller]:
    try:
        import time_machine
    except ImportError:  # pragma: no cover - time-machine ships with the test extra
        raise ImportError(
            "Moving the process's wall clock needs time-machine. Install it with "
            "`pip install time-machine`, or pass clock=<VirtualClock> to move a virtual clock."
        ) from None

    class WallTraveller(time_machine.Traveller):
        """Wall time = the clock below us, shifted by ``offset`` and scaled by ``rate``."""

        def __init__(self, below: Callable[[], int], offset_ns: int, rate: float) -> None:
            super().__init__(0, None, True)
            self.below = below
            self.anchor = below()
            self.offset_ns = offset_ns
            self.rate = rate

        def time_ns(self) -> int:
            elapsed = self.below() - self.anchor
            return self.anchor + self.offset_ns + round(elapsed * self.rate)

    return WallTraveller


class ClockFault:
    """A clock fault: a context manager (sync and async) that undoes itself on exit.

    ``rebound`` names every early-bound monotonic reference that was rebound.
    """

    def __init__(self, fault: str, *, clock: VirtualClock | None, target: Target,
                 seconds: float = 0.0, to: float | None = None, rate: float = 1.0,
                 exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
                 history: History | None = None) -> None:
        self.fault = fault
        self.clock = clock
        self.target = target
        self.seconds = seconds
        self.to = to
        self.rate = rate
        self.exclude = exclude
        self.history = validate.history(history)
        self.rebound: list[str] = []
        self._events_clock: Clock = clock if clock is not None else SystemClock()
        self._undo: list[Callable[[], None]] = []
        self._active = False

    @property
    def active(self) -> bool:
        """Whether the fault is applied now."""
        return self._active

    def start(self) -> ClockFault:
        """Apply the fault."""
        if self._active:
            raise RuntimeError(f"{self!r} is already active; stop() it before starting again.")
        if self.clock is not None:
            self._start_virtual(self.clock)
        else:
            self._start_process()
        self._active = True
        emit(FAULT_ARMED, "clock", self._events_clock, history=self.history, family="clock",
             fault=self.fault, target=self.target)
        emit(CLOCK_SKEW, "clock", self._events_clock, history=self.history,
             fault=self.fault, seconds=self.seconds, to=self.to, rate=self.rate,
             target=self.target, on="virtual" if self.clock is not None else "process",
             rebound=len(self.rebound))
        emit(FAULT_FIRED, "clock", self._events_clock, history=self.history, family="clock",
             action=repr(self), trigger="always", call=1)
        return self

    def stop(self) -> None:
        """Undo the fault; safe to call twice."""
        if not self._active:
            return
        self._active = False
        while self._undo:
            self._undo.pop()()
        emit(FAULT_DISARMED, "clock", self._events_clock, history=self.history, family="clock",
             fault=self.fault, target=self.target)

    def _start_virtual(self, clock: VirtualClock) -> None:
        if self.fault == "drift":
            previous, started = clock.rate, clock.monotonic()
            clock.drift(self.rate)

            def undo_drift() -> None:
                gained = (clock.monotonic() - started) * (self.rate - previous)
                clock.drift(previous)
                clock.skew(-gained)  # the wall time the drift gained goes too

            self._undo.append(undo_drift)
            return
        wall = self.seconds if self.to is None else self.to - clock.time()
        if self.target in ("wall", "both"):
            clock.skew(wall)
            self._undo.append(lambda: clock.skew(-wall))
        if self.target in ("monotonic", "both"):
            clock.advance(self.seconds)  # monotonic time that passed stays passed

    def _start_process(self) -> None:
        try:
            if self.target in ("monotonic", "both"):
                key = id(self)
                self.rebound = _MONO.add(key, self.exclude, seconds=self.seconds,
                                         rate=self.rate)
                self._undo.append(lambda: _MONO.remove(key))
            if self.target in ("wall", "both"):
                self._start_wall()
        except BaseException:
            while self._undo:
                self._undo.pop()()
            raise

    def _start_wall(self) -> None:
        import time_machine

        cls = _wall_traveller_class()
        stack = time_machine.traveller_stack
        below = stack[-1].time_ns if stack else _real_time_ns
        now_ns = below()
        if self.fault == "drift":
            offset_ns, rate = 0, self.rate
        elif self.to is not None:
            offset_ns, rate = round(self.to * _NS) - now_ns, 1.0
        else:
            offset_ns, rate = round(self.seconds * _NS), 1.0
        travel = time_machine.travel(now_ns / _NS + offset_ns / _NS, tick=True)
        travel.start()
        mine = cls(below, offset_ns, rate)
        stack[-1] = mine

        def undo() -> None:
            if not stack or stack[-1] is not mine:
                raise RuntimeError(
                    f"{self!r} is not the innermost wall-clock fault. Undo clock faults in "
                    "reverse order (nest them as `with` blocks)."
                )
            travel.stop()

        self._undo.append(undo)

    def __enter__(self) -> ClockFault:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> ClockFault:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        if self.fault == "drift":
            arg = f"rate={self.rate!r}, target={self.target!r}"
        elif self.fault == "jump":
            arg = f"to={self.to!r}"
        else:
            arg = f"seconds={self.seconds!r}, target={self.target!r}"
        where = "virtual" if self.clock is not None else "process"
        return f"<ClockFault {self.fault}({arg}) on the {where} clock>"


def _target(target: str) -> Target:
    if not isinstance(target, str) or target not in _TARGETS:
        raise ValueError(f"target={validate.show(target)} is not a clock. Pass 'wall', "
                         f"'monotonic' or "
                         "'both'.")
    return target  # type: ignore[return-value]


def _exclude(exclude: object) -> tuple[str, ...]:
    if not (isinstance(exclude, tuple) and all(isinstance(m, str) for m in exclude)):
        raise TypeError(f"exclude={validate.show(exclude)} is not a tuple of module names. "
                        "Pass e.g. DEFAULT_EXCLUDE + ('mypackage.scheduler',).")
    return exclude


def _virtual(clock: object) -> VirtualClock | None:
    if clock is None or isinstance(clock, VirtualClock):
        return clock
    raise TypeError(f"clock={validate.show(clock)} is not a VirtualClock. Pass the test's "
                    "VirtualClock, or None to move the process's real clocks.")


def skew(seconds: float, *, target: Target = "wall", clock: VirtualClock | None = None,
         exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
         history: History | None = None) -> ClockFault:
    """Shift ``target`` clock(s) by ``seconds`` for the block.

    Wall time may step backwards (an NTP correction) while monotonic time keeps going;
    monotonic time only moves forward, so ``target`` ``"monotonic"``/``"both"`` needs
    ``seconds >= 0``. Leaving the block steps the process clocks back, so do not let a
    wait on skewed monotonic time straddle the exit.
    """
    value = validate.number(seconds, "seconds", low=-MAX_SHIFT, high=MAX_SHIFT,
                             what="a valid offset",
                             accepted=f"a finite number of seconds within ±{MAX_SHIFT:g}")
    target = _target(target)
    exclude = _exclude(exclude)
    if value < 0 and target != "wall":
        raise ValueError(
            f"seconds={seconds!r} would move monotonic time backwards. Pass seconds >= 0, "
            "or target='wall' to step wall time back (monotonic keeps going)."
        )
    return ClockFault("skew", clock=_virtual(clock), target=target, seconds=value,
                      exclude=exclude, history=history)


def jump(to: float | dt.datetime, *, clock: VirtualClock | None = None,
         history: History | None = None) -> ClockFault:
    """Set wall time to ``to`` (epoch seconds or an aware ``datetime``); it keeps ticking."""
    if isinstance(to, dt.datetime):
        if to.tzinfo is None:
            raise ValueError(f"to={to!r} is a naive datetime. Pass an aware datetime, e.g. "
                             "datetime(2030, 1, 1, tzinfo=timezone.utc).")
        when = to.timestamp()
    else:
        when = validate.number(to, "to", low=0.0, high=MAX_EPOCH, what="a time",
                                accepted="epoch seconds (0 to 253402300799, the end of "
                                "year 9999) or an aware datetime")
    return ClockFault("jump", clock=_virtual(clock), target="wall", to=when, history=history)


def drift(rate: float, *, target: Target = "wall", clock: VirtualClock | None = None,
          exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
          history: History | None = None) -> ClockFault:
    """Make ``target`` clock(s) run ``rate`` seconds per real second (1.001 = 0.1% fast).

    On a ``VirtualClock`` only wall time drifts: its monotonic time is the reference that
    ``advance()`` moves. On the process's clocks, ``"monotonic"``/``"both"`` also make
    rebound monotonic references drift; leaving the block steps them back (or forward).
    """
    value = validate.number(rate, "rate", low=0.0, low_open=True, high=MAX_RATE,
                             what="a valid drift rate", accepted=(
                                 "a finite number > 0 (1.0 = no drift; at most "
                                 f"{MAX_RATE:g}); use skew() to step wall time backwards"))
    target = _target(target)
    exclude = _exclude(exclude)
    virtual = _virtual(clock)
    if virtual is not None and target != "wall":
        raise ValueError(
            f"target={validate.show(target)} cannot drift on a VirtualClock: its monotonic "
            f"time only "
            "moves with advance(). Pass target='wall', or clock=None to drift the "
            "process's monotonic clock."
        )
    return ClockFault("drift", clock=virtual, target=target, rate=value, exclude=exclude,
                      history=history)
