"""``CircuitBreaker``: CLOSED / OPEN / HALF_OPEN over count- or time-based windows.

resilience4j's model: consecutive failures, failure rate and slow-call rate over a
sliding window (after ``minimum_calls``), a recovery timeout, and exactly
``half_open_max_calls`` trial calls in half-open. The lock covers only bookkeeping,
never the protected call. Each state has an epoch: a call admitted in one state cannot
change a later one (a slow call from CLOSED cannot close a HALF_OPEN breaker).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from pytest_resilience import _events, _validate
from pytest_resilience._breaker_window import CountWindow, TimeWindow
from pytest_resilience._clock import Clock
from pytest_resilience._errors import CircuitOpenError
from pytest_resilience._events import emit
from pytest_resilience.kinds import BREAKER_CALL, BREAKER_REJECTED, BREAKER_TRANSITION

if TYPE_CHECKING:
    from pytest_resilience._storage import Admission, BreakerStore, Storage

__all__ = ["BreakerState", "CircuitBreaker", "Listener"]

P = ParamSpec("P")
T = TypeVar("T")


class BreakerState(enum.Enum):
    """The three states; ``.value`` is what events carry."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
_OPEN_VALUE = OPEN.value  # an enum's .value is a property: read once

#: Called as ``fn(breaker, old_state, new_state)`` after each transition.
Listener = Callable[["CircuitBreaker", BreakerState, BreakerState], object]


def _rate(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    return _validate.fraction(value, name, low_open=True, what="a rate",
                              accepted="a number in (0, 1], or None")


def _positive(name: str, value: float) -> float:
    return _validate.seconds(value, name, positive=True,
                             accepted="a finite number of seconds > 0")


def _count(name: str, value: object, low: int = 1, high: int | None = None) -> int:
    return _validate.count(value, name, low=low, high=high)


#: The largest count window (one byte per call per outcome kind).
MAX_WINDOW = 1_000_000


class CircuitBreaker:
    """Stops calling a failing dependency and lets it recover.

    Trips to OPEN on ``failure_threshold`` consecutive failures, or when the window holds
    at least ``minimum_calls`` and the failure rate reaches ``failure_rate`` or the share
    of calls lasting ``slow_call_duration`` or more reaches ``slow_call_rate``. After
    ``recovery_timeout`` it admits ``half_open_max_calls`` trial calls: all succeed ->
    CLOSED, one fails (or is slow) -> OPEN again. Only ``expected`` exceptions count as
    failures; others pass through unrecorded.

    With ``storage=RedisStorage(...)`` every breaker of the same ``name`` shares one
    state, window and set of trial slots: a breaker opened in one process rejects in
    the others on their next call.
    """

    def __init__(
        self,
        *,
        name: str = "breaker",
        failure_threshold: int | None = 5,
        failure_rate: float | None = None,
        slow_call_duration: float | None = None,
        slow_call_rate: float | None = None,
        window: str = "count",
        window_size: float = 100,
        minimum_calls: int = 10,
        recovery_timeout: float = 60.0,
        half_open_max_calls: int = 1,
        expected: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        listeners: Iterable[Listener] = (),
        clock: Clock | None = None,
        storage: Storage | None = None,
    ) -> None:
        if failure_threshold is not None:
            _count("failure_threshold", failure_threshold)
        self.failure_rate = _rate("failure_rate", failure_rate)
        self.slow_call_rate = _rate("slow_call_rate", slow_call_rate)
        self.slow_call_duration = (
            None if slow_call_duration is None
            else _positive("slow_call_duration", slow_call_duration)
        )
        if self.slow_call_rate is not None and self.slow_call_duration is None:
            raise ValueError(
                f"slow_call_rate={slow_call_rate!r} needs slow_call_duration. "
                "Pass slow_call_duration=<seconds> that makes a call slow."
            )
        if failure_threshold is None and self.failure_rate is None and self.slow_call_rate is None:
            raise ValueError(
                "failure_threshold=None leaves no rule to trip on. "
                "Pass failure_threshold, failure_rate or slow_call_rate."
            )
        if window not in ("count", "time"):
            raise ValueError(f"window={_validate.show(window)} is not a window kind. Pass "
                             f"'count' or 'time'.")
        self.minimum_calls = _count("minimum_calls", minimum_calls)
        self.window_kind = window
        self._window: CountWindow | TimeWindow
        if window == "count":
            size = _count("window_size", window_size, high=MAX_WINDOW)
            if self.minimum_calls > size:
                raise ValueError(
                    f"minimum_calls={minimum_calls!r} exceeds window_size={window_size!r}: the "
                    "window can never hold enough calls. Pass minimum_calls <= window_size."
                )
            self._window = CountWindow(size, self.minimum_calls)
        else:
            self._window = TimeWindow(_positive("window_size", window_size))
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_timeout = _positive("recovery_timeout", recovery_timeout)
        self.half_open_max_calls = _count("half_open_max_calls", half_open_max_calls)
        self.expected = _validate.exception_types(expected, "expected")
        self.clock: Clock = _validate.clock(clock)
        self._mono = self.clock.monotonic
        self._listeners: tuple[Listener, ...] = _validate.callables(listeners, "listeners")
        self._lock = threading.Lock()
        self._phase: tuple[BreakerState, int] = (CLOSED, 0)
        self._consecutive = 0
        self._opened_at = 0.0
        self._trials = 0
        self._trial_successes = 0
        self._windowed = self.failure_rate is not None or self.slow_call_rate is not None
        self._slow_rule = self.slow_call_duration is not None
        self.storage = _validate.storage(storage)
        self._store: BreakerStore | None = None
        if storage is not None:
            self._store = storage.breaker_store(self)
        if self._store is not None:
            self.call = self._call_shared  # type: ignore[method-assign]
            self.acall = self._acall_shared  # type: ignore[method-assign]

    # -- state -----------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The current state (OPEN turns HALF_OPEN here once the timeout has passed)."""
        if self._store is not None:
            state, moves = self._store.state()
            self._announce(moves)
            return state
        changes: list[tuple[BreakerState, BreakerState]] = []
        with self._lock:
            if self._phase[0] is OPEN and self._mono() >= self._opened_at + self.recovery_timeout:
                self._to(HALF_OPEN, changes)
            state = self._phase[0]
        self._announce(changes)
        return state

    @property
    def metrics(self) -> dict[str, float]:
        """Window counts, consecutive failures and rates, as plain numbers."""
        if self._store is not None:
            return self._store.metrics()
        with self._lock:
            self._window.expire(self._mono())
            w = self._window
            return {
                "calls": w.calls,
                "failures": w.failures,
                "slow": w.slow,
                "consecutive_failures": self._consecutive,
                "failure_rate": w.failures / w.calls if w.calls else 0.0,
                "slow_call_rate": w.slow / w.calls if w.calls else 0.0,
            }

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(breaker, old, new)`` after each transition; returns a remover."""
        with self._lock:
            self._listeners = (*self._listeners, fn)

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(f for f in self._listeners if f is not fn)

        return remove

    def trip(self) -> None:
        """Open the breaker now (manual override)."""
        self._force(OPEN)

    def reset(self) -> None:
        """Close the breaker now and forget the window."""
        self._force(CLOSED)

    def _force(self, state: BreakerState) -> None:
        if self._store is not None:
            self._announce(self._store.force(state))
            return
        changes: list[tuple[BreakerState, BreakerState]] = []
        with self._lock:
            if self._phase[0] is not state:
                self._to(state, changes)
        self._announce(changes)

    # -- bookkeeping (callers hold the lock) --------------------------------------------
    def _to(self, state: BreakerState, changes: list[tuple[BreakerState, BreakerState]]) -> None:
        old, epoch = self._phase
        self._phase = (state, epoch + 1)
        self._trials = self._trial_successes = 0
        if state is OPEN:
            self._opened_at = self._mono()
        else:
            self._consecutive = 0
            self._window.reset()
        changes.append((old, state))

    def _announce(self, changes: list[tuple[BreakerState, BreakerState]]) -> None:
        for old, new in changes:
            attrs: dict[str, Any] = {"from": old.value, "to": new.value}
            emit(BREAKER_TRANSITION, self.name, self.clock, **attrs)
            for fn in self._listeners:
                fn(self, old, new)

    def _admit(self) -> tuple[BreakerState, int]:
        phase = self._phase
        if phase[0] is CLOSED:
            return phase
        changes: list[tuple[BreakerState, BreakerState]] = []
        retry_after = -1.0
        with self._lock:
            phase = self._phase
            if phase[0] is OPEN:
                wait = self._opened_at + self.recovery_timeout - self._mono()
                if wait > 0:
                    retry_after = wait
                else:
                    self._to(HALF_OPEN, changes)
                    phase = self._phase
            if phase[0] is HALF_OPEN and retry_after < 0:
                if self._trials < self.half_open_max_calls:
                    self._trials += 1
                else:
                    retry_after = 0.0
        self._announce(changes)
        if retry_after >= 0:
            raise self._rejection(phase[0], retry_after)
        return phase

    def _rejection(self, state: BreakerState, retry_after: float) -> CircuitOpenError:
        """The error for a refused call (its caller raises it: one frame less to unwind)."""
        if _events.listening():
            emit(BREAKER_REJECTED, self.name, self.clock, retry_after=retry_after)
        # Message and context are formatted only if somebody reads them: a breaker that
        # refuses calls in a hot loop must cost less than the call it protects.
        return CircuitOpenError._rejection(self.name, state.value, retry_after,
                                           self.half_open_max_calls)

    def _record(self, phase: tuple[BreakerState, int], failed: bool, duration: float) -> None:
        changes: list[tuple[BreakerState, BreakerState]] = []
        limit = self.slow_call_duration
        slow = limit is not None and duration >= limit
        with self._lock:
            if self._phase is phase:
                state = phase[0]
                if state is CLOSED:
                    self._consecutive = self._consecutive + 1 if failed else 0
                    if self._windowed:
                        self._window.record(self._mono(), failed, slow)
                    if self._should_trip():
                        self._to(OPEN, changes)
                elif failed or (slow and self.slow_call_rate is not None):
                    self._to(OPEN, changes)
                else:
                    self._trial_successes += 1
                    if self._trial_successes >= self.half_open_max_calls:
                        self._to(CLOSED, changes)
        if _events.listening():
            outcome = "error" if failed else "slow" if slow else "ok"
            emit(BREAKER_CALL, self.name, self.clock, state=phase[0].value, outcome=outcome,
                 duration=duration)
        if changes:
            self._announce(changes)

    def _check_trip(self, phase: tuple[BreakerState, int]) -> None:
        """A CLOSED success that brought a count window to ``minimum_calls``: the one
        success that can trip it (successes lower a count window's rates)."""
        changes: list[tuple[BreakerState, BreakerState]] = []
        with self._lock:
            if self._phase is phase:
                self._window.expire(self._mono())
                if self._should_trip():
                    self._to(OPEN, changes)
        self._announce(changes)

    def _release(self, phase: tuple[BreakerState, int]) -> None:
        """An ignored exception ends a half-open trial without a verdict."""
        with self._lock:
            if self._phase is phase and phase[0] is HALF_OPEN:
                self._trials -= 1

    def _should_trip(self) -> bool:
        if self.failure_threshold is not None and self._consecutive >= self.failure_threshold:
            return True
        w = self._window
        if not self._windowed or w.calls < self.minimum_calls:
            return False
        if self.failure_rate is not None and w.failures >= self.failure_rate * w.calls:
            return True
        return self.slow_call_rate is not None and w.slow >= self.slow_call_rate * w.calls

    # -- calling ---------------------------------------------------------------------
    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:  # noqa: PLR0912
        """Call ``fn`` through the breaker; raises ``CircuitOpenError`` when it refuses."""
        phase = self._phase
        state = phase[0]
        if state is CLOSED:
            if not self._slow_rule and not _events.listening():
                try:
                    result = fn(*args, **kwargs)
                except self.expected:
                    self._record(phase, True, 0.0)
                    raise
                if self._consecutive:
                    self._record(phase, False, 0.0)
                elif self._windowed:
                    window = self._window  # a count window takes a success lock-free
                    if isinstance(window, CountWindow):
                        if self._phase is phase and next(window.ticks) == window.crossing:
                            self._check_trip(phase)
                    else:
                        self._record(phase, False, 0.0)
                return result
        elif state is OPEN:
            wait = self._opened_at + self.recovery_timeout - self._mono()
            if wait > 0:  # the common rejection, without the lock: _rejection, inlined
                if _events.listening():
                    emit(BREAKER_REJECTED, self.name, self.clock, retry_after=wait)
                raise CircuitOpenError._rejection(self.name, _OPEN_VALUE, wait,
                                                  self.half_open_max_calls)
        phase = self._admit()
        timed = self._slow_rule or _events.listening()
        started = self._mono() if timed else 0.0
        try:
            result = fn(*args, **kwargs)
        except self.expected:
            self._record(phase, True, self._mono() - started if timed else 0.0)
            raise
        except BaseException:
            self._release(phase)
            raise
        self._record(phase, False, self._mono() - started if timed else 0.0)
        return result

    async def acall(  # noqa: PLR0912 - the hot path, kept in one frame
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn`` through the breaker, with the same rules as ``call``."""
        phase = self._phase
        state = phase[0]
        if state is CLOSED:
            if not self._slow_rule and not _events.listening():
                try:
                    result = await fn(*args, **kwargs)
                except self.expected:
                    self._record(phase, True, 0.0)
                    raise
                if self._consecutive:
                    self._record(phase, False, 0.0)
                elif self._windowed:
                    window = self._window  # a count window takes a success lock-free
                    if isinstance(window, CountWindow):
                        if self._phase is phase and next(window.ticks) == window.crossing:
                            self._check_trip(phase)
                    else:
                        self._record(phase, False, 0.0)
                return result
        elif state is OPEN:
            wait = self._opened_at + self.recovery_timeout - self._mono()
            if wait > 0:  # the common rejection, without the lock: _rejection, inlined
                if _events.listening():
                    emit(BREAKER_REJECTED, self.name, self.clock, retry_after=wait)
                raise CircuitOpenError._rejection(self.name, _OPEN_VALUE, wait,
                                                  self.half_open_max_calls)
        phase = self._admit()
        timed = self._slow_rule or _events.listening()
        started = self._mono() if timed else 0.0
        try:
            result = await fn(*args, **kwargs)
        except self.expected:
            self._record(phase, True, self._mono() - started if timed else 0.0)
            raise
        except BaseException:
            self._release(phase)
            raise
        self._record(phase, False, self._mono() - started if timed else 0.0)
        return result

    # -- calling through a shared store ------------------------------------------------
    def _admitted(self, admission: Admission) -> None:
        self._announce(admission.changes)
        if admission.retry_after >= 0:
            raise self._rejection(admission.phase[0], admission.retry_after)

    def _store_outcome(self, admission: Admission, failed: bool, duration: float
                       ) -> list[tuple[BreakerState, BreakerState]]:
        """Record an outcome in the store: one round trip, none for a success that
        cannot change the state (CLOSED, no failure streak, no rate window)."""
        assert self._store is not None
        limit = self.slow_call_duration
        slow = limit is not None and duration >= limit
        if (not failed and admission.phase[0] is CLOSED and not admission.consecutive
                and not self._windowed):
            return []
        return self._store.record(admission.phase, failed, slow)

    def _report(self, admission: Admission, failed: bool, duration: float,
                changes: list[tuple[BreakerState, BreakerState]]) -> None:
        if _events.listening():
            limit = self.slow_call_duration
            slow = limit is not None and duration >= limit
            outcome = "error" if failed else "slow" if slow else "ok"
            emit(BREAKER_CALL, self.name, self.clock, state=admission.phase[0].value,
                 outcome=outcome, duration=duration)
        self._announce(changes)

    def _settle(self, admission: Admission, failed: bool, duration: float) -> None:
        self._report(admission, failed, duration,
                     self._store_outcome(admission, failed, duration))

    async def _asettle(self, admission: Admission, failed: bool, duration: float) -> None:
        changes = await asyncio.to_thread(self._store_outcome, admission, failed, duration)
        self._report(admission, failed, duration, changes)

    def _call_shared(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``call`` when the state lives in a shared store."""
        assert self._store is not None
        admission = self._store.admit()
        self._admitted(admission)
        timed = self._slow_rule or _events.listening()
        started = self._mono() if timed else 0.0
        try:
            result = fn(*args, **kwargs)
        except self.expected:
            self._settle(admission, True, self._mono() - started if timed else 0.0)
            raise
        except BaseException:
            self._store.release(admission.phase)
            raise
        self._settle(admission, False, self._mono() - started if timed else 0.0)
        return result

    async def _acall_shared(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``acall`` when the state lives in a shared store: its round trips run in the
        loop's executor, so the loop never blocks."""
        store = self._store
        assert store is not None
        admission = await asyncio.to_thread(store.admit)
        self._admitted(admission)
        timed = self._slow_rule or _events.listening()
        started = self._mono() if timed else 0.0
        try:
            result = await fn(*args, **kwargs)
        except self.expected:
            await self._asettle(admission, True, self._mono() - started if timed else 0.0)
            raise
        except BaseException:
            await asyncio.to_thread(store.release, admission.phase)
            raise
        await self._asettle(admission, False, self._mono() - started if timed else 0.0)
        return result

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorate a plain or ``async def`` function."""
        if inspect.iscoroutinefunction(fn):
            acall = self.acall

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await acall(fn, *args, **kwargs)

            return cast(Callable[P, T], async_wrapper)
        call = self.call

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return call(fn, *args, **kwargs)

        return wrapper

    def __repr__(self) -> str:
        if self.storage is not None:
            return f"CircuitBreaker(name={self.name!r}, storage={self.storage!r})"
        return f"CircuitBreaker(name={self.name!r}, state={self._phase[0].value!r})"
