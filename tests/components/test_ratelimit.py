"""TokenBucket and RateLimiter: refill, waits, timeouts, the admission bound under threads.

Each test that takes ``storage`` runs on both backends (tests/components/conftest.py).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_resilience import Storage
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import RateLimitExceeded
from pytest_resilience._events import recording
from pytest_resilience._ratelimit import RateLimiter, TokenBucket


def test_burst_then_continuous_refill(storage: Storage) -> None:
    clock = VirtualClock()
    bucket = TokenBucket(rate=2.0, capacity=3, clock=clock, storage=storage)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.advance(0.25)
    assert not bucket.try_acquire()  # half a token
    clock.advance(0.25)
    assert bucket.try_acquire()
    clock.advance(100)
    assert bucket.tokens == 3.0  # never above capacity


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_acquire_waits_exactly_the_deficit_on_the_clock(mode: str, storage: Storage) -> None:
    clock = VirtualClock()
    bucket = TokenBucket(rate=4.0, capacity=2, initial=0, clock=clock, name="api",
                         storage=storage)
    with recording() as history:
        waited = bucket.acquire(2) if mode == "sync" else asyncio.run(bucket.aacquire(2))
    assert waited == 0.5
    assert clock.monotonic() == 0.5
    assert history.select("ratelimit.acquired")[0].attrs == {"tokens": 2, "waited": 0.5}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_acquire_timeout_raises_with_retry_after(mode: str, storage: Storage) -> None:
    clock = VirtualClock()
    bucket = TokenBucket(rate=1.0, capacity=5, initial=0, clock=clock, name="api",
                         storage=storage)
    def attempt() -> None:
        if mode == "sync":
            bucket.acquire(3, timeout=1.0)
        else:
            asyncio.run(bucket.aacquire(3, timeout=1.0))

    with recording() as history, pytest.raises(RateLimitExceeded) as info:
        attempt()
    assert info.value.retry_after == 3.0
    assert info.value.name == "api"
    assert clock.monotonic() == 0.0  # gave up at once: the wait could never fit
    assert history.kinds() == ["ratelimit.rejected"]


def test_try_acquire_events(storage: Storage) -> None:
    bucket = TokenBucket(rate=1, capacity=1, clock=VirtualClock(), name="b", storage=storage)
    with recording() as history:
        bucket.try_acquire()
        bucket.try_acquire()
    assert history.kinds() == ["ratelimit.acquired", "ratelimit.rejected"]
    assert history[1].attrs == {"tokens": 1, "waited": 0.0}


def test_sixteen_threads_never_over_admit_over_ten_virtual_seconds(storage: Storage) -> None:
    clock = VirtualClock()
    rate, capacity = 50.0, 20
    bucket = TokenBucket(rate=rate, capacity=capacity, clock=clock, storage=storage)
    admitted = [0] * 16
    stop = threading.Event()

    def hammer(i: int) -> None:
        while not stop.is_set():
            if bucket.try_acquire():
                admitted[i] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    try:
        for _ in range(1000):  # 10 virtual seconds in 10 ms steps
            clock.advance(0.01)
            stop.wait(0.0002)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    elapsed = clock.monotonic()
    assert elapsed == pytest.approx(10.0)
    assert sum(admitted) <= capacity + rate * elapsed
    assert sum(admitted) >= capacity  # the burst at least was served


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # a name per example
@given(rate=st.integers(1, 100), capacity=st.integers(1, 50),
       steps=st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 5)), max_size=40))
def test_admission_bound_holds_for_any_schedule(
    storage: Storage, rate: int, capacity: int, steps: list[tuple[int, int]]
) -> None:
    clock = VirtualClock()
    bucket = TokenBucket(rate=rate, capacity=capacity, clock=clock, storage=storage,
                         name=uuid.uuid4().hex)  # a fresh shared bucket per example
    admitted = 0
    for millis, n in steps:
        clock.advance(millis / 1000)
        if n <= capacity and bucket.try_acquire(n):
            admitted += n
    assert admitted <= capacity + rate * clock.monotonic() + 1e-9


def test_registry_of_named_limits(storage: Storage) -> None:
    clock = VirtualClock()
    limiter = RateLimiter({"search": (1.0, 2)}, default=(10.0, 1), clock=clock,
                          storage=storage)
    assert [limiter.try_acquire("search") for _ in range(3)] == [True, True, False]
    assert limiter.try_acquire("other")  # created from the default
    assert limiter["other"].capacity == 1
    assert limiter.acquire("search") == 1.0
    strict = RateLimiter({"a": (1.0, 1)}, clock=clock)
    with pytest.raises(KeyError, match=r"no rate limit named 'b' \(configured: a\)"):
        strict.try_acquire("b")
    assert "a" in strict


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0, "capacity": 1}, "rate=0 is not valid. Pass a finite number > 0."),
        ({"rate": 1, "capacity": -1}, "capacity=-1 is not valid."),
        ({"rate": 1, "capacity": 2, "initial": 3}, "initial=3 is not inside the bucket."),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        TokenBucket(**kwargs)
    assert str(info.value).startswith(message)


def test_requests_larger_than_capacity_or_not_positive_are_refused(storage: Storage) -> None:
    bucket = TokenBucket(rate=1, capacity=2, clock=VirtualClock(), storage=storage)
    with pytest.raises(ValueError, match=r"n=3 is not a number of tokens a bucket of "
                       r"capacity 2\.0 can grant\. Pass 0 < n <= capacity\."):
        bucket.acquire(3)
    with pytest.raises(ValueError, match="n=0 is not a number of tokens"):
        bucket.try_acquire(0)
