"""CircuitBreaker: trip rules, windows, half-open trials, listeners, events, bad input.

Each test that takes ``storage`` runs on both backends (tests/components/conftest.py).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from pytest_resilience import Storage
from pytest_resilience._breaker import BreakerState, CircuitBreaker
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import CircuitOpenError
from pytest_resilience._events import recording

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
MODES = ["sync", "async"]


def boom() -> None:
    raise ConnectionError("down")


def ok() -> str:
    return "ok"


def through(breaker: CircuitBreaker, fn: Any, mode: str) -> Any:
    if mode == "sync":
        return breaker.call(fn)

    async def coro() -> Any:
        return fn()

    return asyncio.run(breaker.acall(coro))


def fail(breaker: CircuitBreaker, mode: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            through(breaker, boom, mode)


@pytest.mark.parametrize("mode", MODES)
def test_consecutive_failures_open_then_half_open_then_close(mode: str, storage: Storage) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=10.0, clock=clock, name="db",
                             storage=storage)
    fail(breaker, mode, 2)
    through(breaker, ok, mode)  # a success resets the consecutive count
    fail(breaker, mode, 2)
    assert breaker.state is CLOSED
    fail(breaker, mode)
    assert breaker.state is OPEN
    clock.advance(4.0)
    with pytest.raises(CircuitOpenError) as info:
        through(breaker, ok, mode)
    assert info.value.retry_after == 6.0
    assert info.value.name == "db"
    assert str(info.value) == "circuit 'db' is open: retry in 6.000s"
    clock.advance(6.0)
    assert breaker.state is HALF_OPEN
    assert through(breaker, ok, mode) == "ok"
    assert breaker.state is CLOSED


@pytest.mark.parametrize("mode", MODES)
def test_half_open_failure_reopens(mode: str, storage: Storage) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5.0, clock=clock,
                             storage=storage)
    fail(breaker, mode)
    clock.advance(5.0)
    fail(breaker, mode)
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        through(breaker, ok, mode)


def test_failure_rate_over_count_window_after_minimum_calls(storage: Storage) -> None:
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.5, window="count",
                             window_size=4, minimum_calls=4, clock=VirtualClock(), storage=storage)
    fail(breaker, "sync")
    breaker.call(ok)
    fail(breaker, "sync")
    assert breaker.state is CLOSED  # 3 calls < minimum_calls
    breaker.call(ok)  # 2 of 4 failed = 50%
    assert breaker.state is OPEN


def test_count_window_forgets_old_calls(storage: Storage) -> None:
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.75, window_size=4,
                             minimum_calls=4, clock=VirtualClock(), storage=storage)
    fail(breaker, "sync", 2)
    for _ in range(3):
        breaker.call(ok)
    fail(breaker, "sync", 2)  # window: ok ok f f -> 50%
    assert breaker.state is CLOSED
    assert breaker.metrics["failures"] == 2


def test_time_window_drops_calls_older_than_its_size(storage: Storage) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.5, window="time",
                             window_size=10.0, minimum_calls=3, clock=clock, storage=storage)
    fail(breaker, "sync", 2)
    clock.advance(10.0)
    breaker.call(ok)
    breaker.call(ok)
    fail(breaker, "sync")  # the two early failures expired: 1 of 3
    assert breaker.state is CLOSED
    assert breaker.metrics["calls"] == 3
    fail(breaker, "sync")  # 2 of 4 = 50%
    assert breaker.state is OPEN


def test_slow_call_rate_trips_on_latency(storage: Storage) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=None, slow_call_duration=1.0, slow_call_rate=0.5,
                             window_size=10, minimum_calls=2, clock=clock, storage=storage)

    def slow() -> str:
        clock.advance(2.0)
        return "late"

    with recording() as history:
        breaker.call(ok)
        assert breaker.call(slow) == "late"
    assert breaker.state is OPEN
    calls = history.select("breaker.call")
    assert [c.attrs["outcome"] for c in calls] == ["ok", "slow"]
    assert calls[1].attrs["duration"] == 2.0


def test_half_open_admits_exactly_the_permitted_calls(storage: Storage) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, half_open_max_calls=2,
                             clock=clock, storage=storage)
    fail(breaker, "sync")
    clock.advance(1.0)
    inner: list[str] = []

    def nested() -> str:
        with pytest.raises(CircuitOpenError, match="all 2 half-open trial calls are in flight"):
            breaker.call(ok)
        inner.append("rejected")
        return "ok"

    def second() -> str:
        return breaker.call(nested)

    assert breaker.call(second) == "ok"
    assert inner == ["rejected"]
    assert breaker.state is CLOSED


def test_unexpected_exceptions_are_not_counted(storage: Storage) -> None:
    breaker = CircuitBreaker(failure_threshold=1, expected=(ConnectionError,),
                             clock=VirtualClock(), storage=storage)

    def bad() -> None:
        raise KeyError("x")

    for _ in range(3):
        with pytest.raises(KeyError):
            breaker.call(bad)
    assert breaker.state is CLOSED


def test_listeners_and_transition_events(storage: Storage) -> None:
    clock = VirtualClock()
    seen: list[tuple[str, str]] = []
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, clock=clock, name="s",
                             listeners=[lambda b, old, new: seen.append((old.value, new.value))],
                             storage=storage)
    with recording() as history:
        fail(breaker, "sync")
        with pytest.raises(CircuitOpenError):
            breaker.call(ok)
        clock.advance(1.0)
        breaker.call(ok)
    expected = [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert seen == expected
    transitions = [(e.attrs["from"], e.attrs["to"]) for e in history.select("breaker.transition")]
    assert transitions == expected
    assert history.select("breaker.rejected")[0].attrs == {"retry_after": 1.0}
    assert {e.source for e in history} == {"s"}


def test_manual_trip_and_reset(storage: Storage) -> None:
    breaker = CircuitBreaker(clock=VirtualClock(), storage=storage)
    breaker.trip()
    assert breaker.state is OPEN
    breaker.reset()
    assert breaker.state is CLOSED


def test_decorator_sync_and_async(storage: Storage) -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=VirtualClock(), storage=storage)

    @breaker
    def f(x: int) -> int:
        return x * 2

    @breaker
    async def g(x: int) -> int:
        return x + 1

    assert f(2) == 4
    assert asyncio.run(g(1)) == 2
    assert f.__name__ == "f"


def test_breaker_does_not_hold_its_lock_during_the_call(storage: Storage) -> None:
    breaker = CircuitBreaker(failure_threshold=3, slow_call_duration=10.0,
                             clock=VirtualClock(), storage=storage)
    inside = threading.Barrier(4, timeout=10)

    def meet() -> str:
        inside.wait()  # all four threads must be inside the call at once
        return "ok"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(breaker.call(meet)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["ok"] * 4


def test_sixteen_threads_lose_no_transition_and_admit_exactly_the_trials(storage: Storage) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=1.0, half_open_max_calls=3,
                             clock=clock, storage=storage)
    with recording() as history:
        start = threading.Barrier(16, timeout=10)

        def hammer() -> None:
            start.wait()
            for _ in range(50):
                with pytest.raises((ConnectionError, CircuitOpenError)):
                    breaker.call(boom)

        threads = [threading.Thread(target=hammer) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert breaker.state is OPEN
        clock.advance(1.0)
        gate = threading.Event()
        admitted: list[int] = []
        rejected: list[int] = []

        def trial() -> None:
            try:
                breaker.call(lambda: (admitted.append(1), gate.wait(10)))
            except CircuitOpenError:
                rejected.append(1)

        trials = [threading.Thread(target=trial) for _ in range(16)]
        for t in trials:
            t.start()
        for _ in range(10_000):  # bounded: each pass waits at most 1 ms
            if len(admitted) + len(rejected) == 16:
                break
            gate.wait(0.001)
        gate.set()
        for t in trials:
            t.join(10)
    assert len(admitted) == 3
    assert len(rejected) == 13
    assert breaker.state is CLOSED
    moves = [(e.attrs["from"], e.attrs["to"]) for e in history.select("breaker.transition")]
    assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_many_asyncio_tasks_half_open_admits_exactly_the_permitted_number(
    storage: Storage,
) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, half_open_max_calls=4,
                             clock=clock, storage=storage)
    fail(breaker, "sync")
    clock.advance(1.0)

    async def main() -> list[Any]:
        # Every trial stays in flight until all 100 calls were admitted or refused, so
        # no admission can see a verdict (a shared store's admissions take real I/O).
        decided = 0
        everyone = asyncio.Event()

        def count() -> None:
            nonlocal decided
            decided += 1
            if decided == 100:
                everyone.set()

        async def work() -> str:
            count()
            await everyone.wait()
            return "ok"

        async def one() -> object:
            try:
                return await breaker.acall(work)
            except CircuitOpenError as exc:
                count()
                return exc

        return await asyncio.gather(*(one() for _ in range(100)))

    results = asyncio.run(main())
    assert results.count("ok") == 4
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 96
    assert breaker.state is CLOSED


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0},
         "failure_threshold=0 is not a valid count. Pass an integer >= 1."),
        ({"failure_rate": 1.5}, "failure_rate=1.5 is not a rate. Pass a number in (0, 1]"),
        ({"window_size": 5, "minimum_calls": 10},
         "minimum_calls=10 exceeds window_size=5: the window can never hold enough calls."),
        ({"recovery_timeout": -1}, "recovery_timeout=-1 is not a valid number of seconds. "
                                   "Pass a finite number of seconds > 0."),
        ({"half_open_max_calls": 0}, "half_open_max_calls=0 is not a valid count."),
        ({"window": "sliding"}, "window='sliding' is not a window kind. Pass 'count' or 'time'."),
        ({"slow_call_rate": 0.5}, "slow_call_rate=0.5 needs slow_call_duration."),
        ({"failure_threshold": None}, "failure_threshold=None leaves no rule to trip on."),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        CircuitBreaker(**kwargs)
    assert str(info.value).startswith(message)
