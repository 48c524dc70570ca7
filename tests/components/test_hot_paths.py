"""The fast paths keep the slow paths' semantics: same numbers, same errors, same events,
and no lost update when threads race.

Speed itself is measured in ``benchmarks/`` (never asserted here); what is asserted is
what each shortcut must not change.
"""

from __future__ import annotations

import contextlib
import random
import threading
import tracemalloc
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience._backoff import Backoff, Jittered
from pytest_resilience._breaker import BreakerState, CircuitBreaker
from pytest_resilience._breaker_window import CountWindow
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import CircuitOpenError, RetryError
from pytest_resilience._events import recording
from pytest_resilience._ratelimit import RateLimiter, TokenBucket
from pytest_resilience._retry import Retry
from pytest_resilience.memory import ModelCache

THREADS = 4


def in_threads(work: Any, n: int = THREADS) -> None:
    threads = [threading.Thread(target=work) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)


# -- retry: delays --------------------------------------------------------------------------
def reference_delays(backoff: Backoff, jitter: str, seed: int, n: int) -> list[float]:
    """The delays as ``random.uniform`` gives them (the definition in the docs)."""
    rng, previous, out = random.Random(seed), backoff.base, []
    for retry in range(1, n + 1):
        d = backoff.delay(retry)
        if jitter == "decorrelated":
            previous = rng.uniform(backoff.base, min(backoff.max, max(backoff.base, previous * 3)))
            out.append(previous)
        elif jitter == "none" or d == 0:
            out.append(d)
        elif jitter == "full":
            out.append(rng.uniform(0.0, d))
        else:
            out.append(d / 2 + rng.uniform(0.0, d / 2))
    return out


BACKOFFS = [Backoff.exponential(base=0.3, max=5.0), Backoff.linear(base=0.0, step=0.01, max=0.5),
            Backoff.constant(0.0), Backoff.constant(0.2)]


@pytest.mark.parametrize("backoff", BACKOFFS, ids=lambda b: b.kind)
@pytest.mark.parametrize("jitter", ["full", "equal", "none", "decorrelated"])
def test_jittered_delays_are_the_documented_numbers(backoff: Backoff, jitter: str) -> None:
    source = Jittered(backoff, jitter, random.Random(5))
    assert [source.next(n) for n in range(1, 150)] == reference_delays(backoff, jitter, 5, 149)


@pytest.mark.parametrize("jitter", ["full", "equal", "none", "decorrelated"])
def test_a_retrying_call_sleeps_the_documented_delays(jitter: str) -> None:
    slept: list[float] = []

    class Recording(VirtualClock):
        def sleep(self, seconds: float) -> None:
            slept.append(seconds)
            super().sleep(seconds)

    backoff = Backoff.exponential(base=0.1, max=2.0)
    policy = Retry(attempts=6, backoff=backoff, jitter=jitter, seed=9, clock=Recording())
    calls = iter(range(100))

    def flaky() -> int:
        if next(calls) % 6 != 5:
            raise ConnectionError("down")
        return 1

    for _ in range(3):  # stateless jitter modes share one delay source across calls
        assert policy.call(flaky) == 1
    rng, expected = random.Random(9), []  # one stream per policy
    for _ in range(3):
        previous = backoff.base  # decorrelated jitter starts again with each call
        for retry in range(1, 6):
            d = backoff.delay(retry)
            if jitter == "none":
                expected.append(d)
            elif jitter == "full":
                expected.append(rng.uniform(0.0, d))
            elif jitter == "equal":
                expected.append(d / 2 + rng.uniform(0.0, d / 2))
            else:
                previous = rng.uniform(backoff.base, min(backoff.max, max(backoff.base,
                                                                          previous * 3)))
                expected.append(previous)
    assert slept == expected


def test_a_changed_backoff_is_used_by_the_next_call() -> None:
    policy = Retry(attempts=2, backoff=Backoff.constant(5.0), jitter="none", clock=VirtualClock())
    fails = iter([True, False, True, False])

    def flaky() -> int:
        if next(fails):
            raise ConnectionError("down")
        return 1

    policy.call(flaky)
    assert policy.clock.monotonic() == 5.0
    policy.backoff = Backoff.constant(0.0)
    policy.call(flaky)
    assert policy.clock.monotonic() == 5.0


def test_a_given_up_call_still_lists_every_attempt() -> None:
    clock = VirtualClock()
    policy = Retry(attempts=3, backoff=Backoff.constant(1.0), jitter="none", clock=clock)

    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(RetryError) as info:
        policy.call(down)
    attempts = info.value.attempts
    assert [(a.number, a.started, a.ended) for a in attempts] == [(1, 0.0, 0.0), (2, 1.0, 1.0),
                                                                   (3, 2.0, 2.0)]
    assert all(isinstance(a.exception, ConnectionError) for a in attempts)


# -- virtual clock -----------------------------------------------------------------------------
def test_sleeps_from_many_threads_add_up_exactly() -> None:
    clock = VirtualClock()

    def work() -> None:
        for _ in range(20_000):
            clock.sleep(0.25)

    in_threads(work)
    assert clock.monotonic() == THREADS * 20_000 * 0.25


def test_a_subclass_that_changes_advance_sees_every_sleep() -> None:
    advanced: list[float] = []

    class Stepping(VirtualClock):
        def advance(self, seconds: float) -> None:
            advanced.append(seconds)
            super().advance(seconds)

    clock = Stepping()
    clock.sleep(1.5)
    clock.sleep(0)
    assert advanced == [1.5]
    assert clock.monotonic() == 1.5


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "x"])
def test_sleep_still_refuses_what_advance_refuses(bad: Any) -> None:
    clock = VirtualClock()
    with pytest.raises((ValueError, TypeError)):
        clock.sleep(bad)
    with pytest.raises((ValueError, TypeError)):
        clock.advance(bad)
    assert clock.monotonic() == 0.0


# -- breaker: rejection ------------------------------------------------------------------------
@pytest.mark.parametrize(("trials", "advance", "text"), [
    (1, 4.0, "circuit 'db' is open: retry in 6.000s"),
    (2, 10.0, "circuit 'db' is half_open: all 2 half-open trial calls are in flight"),
])
def test_a_rejection_reads_exactly_like_the_error_built_by_hand(
    trials: int, advance: float, text: str,
) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(name="db", failure_threshold=1, recovery_timeout=10.0,
                             half_open_max_calls=trials, clock=clock)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    clock.advance(advance)
    if trials == 2:  # hold both trial slots
        gate = threading.Event()
        holders = [threading.Thread(target=breaker.call, args=(gate.wait, 30)) for _ in range(2)]
        for holder in holders:
            holder.start()
        while breaker._trials < 2:
            clock.sleep(0)
    try:
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(lambda: "ok")
    finally:
        if trials == 2:
            gate.set()
            for holder in holders:
                holder.join(30)
    error = info.value
    state = "open" if trials == 1 else "half_open"
    by_hand = CircuitOpenError(text, name="db", retry_after=error.retry_after,
                               context={"state": state})
    assert (str(error), repr(error), error.args, error.context, error.message) == (
        str(by_hand), repr(by_hand), by_hand.args, by_hand.context, by_hand.message)
    assert (error.name, error.recoverable) == ("db", True)


def test_a_rejection_is_an_event_when_somebody_listens() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10.0, clock=clock)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    with recording() as history, pytest.raises(CircuitOpenError):
        breaker.call(lambda: "ok")
    assert [(e.kind, dict(e.attrs)) for e in history] == [
        ("breaker.rejected", {"retry_after": 10.0})]


# -- breaker: count window ---------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 12), minimum=st.integers(1, 12),
       ops=st.lists(st.sampled_from(["ok", "ok", "ok", "fail", "slow", "both", "read"]),
                    max_size=120))
def test_count_window_totals_match_the_last_n_outcomes(size: int, minimum: int,
                                                        ops: list[str]) -> None:
    window = CountWindow(size, min(minimum, size))
    model: deque[tuple[bool, bool]] = deque(maxlen=size)
    for op in ops:
        if op == "read":
            window.expire(0.0)
            assert (window.calls, window.failures, window.slow) == (
                len(model), sum(f for f, _ in model), sum(s for _, s in model))
            continue
        if op == "ok":
            if next(window.ticks) == window.crossing:  # the success reaching the minimum
                assert len(model) + 1 == min(minimum, size)
        else:
            window.record(0.0, op in ("fail", "both"), op in ("slow", "both"))
        model.append((op in ("fail", "both"), op in ("slow", "both")))
    window.expire(0.0)
    assert (window.calls, window.failures, window.slow) == (
        len(model), sum(f for f, _ in model), sum(s for _, s in model))


def test_a_success_that_reaches_minimum_calls_trips_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.5, window_size=10,
                             minimum_calls=4, clock=VirtualClock())
    for outcome in ("fail", "fail", "ok"):
        with contextlib.suppress(ZeroDivisionError):
            breaker.call(lambda o=outcome: 1 / 0 if o == "fail" else 1)
    assert breaker.state is BreakerState.CLOSED  # 3 calls: below the minimum
    assert breaker.call(lambda: 1) == 1  # the 4th call: 2 of 4 failed
    assert breaker.state is BreakerState.OPEN


def test_successes_from_many_threads_are_all_counted() -> None:
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.9, window_size=50_000,
                             minimum_calls=50_000, clock=VirtualClock())

    def work() -> None:
        for _ in range(10_000):
            breaker.call(int)

    in_threads(work)
    assert breaker.metrics["calls"] == THREADS * 10_000
    assert breaker.metrics["failures"] == 0


# -- model cache: lock-free hits ---------------------------------------------------------------
def test_hits_racing_evictions_and_expiry_lose_nothing() -> None:
    clock = VirtualClock()
    cache = ModelCache(capacity_bytes=40, ttl=5.0, clock=clock,
                       loader=lambda key: f"model-{key}")
    gets = 4_000

    def work() -> None:
        rng = random.Random(threading.get_ident())
        for i in range(gets):
            key = rng.randrange(8)
            assert cache.get(key, size=10) == f"model-{key}"
            if i % 50 == 0:
                cache.expire()
                clock.sleep(0.5)

    in_threads(work)
    stats = cache.stats()
    assert stats.hits + stats.misses == THREADS * gets
    assert stats.hits > 0
    assert stats.bytes <= 40
    assert stats.hits == cache.stats().hits  # reading the counters changes nothing


def test_a_hit_is_an_event_only_for_a_listener() -> None:
    cache = ModelCache(loader=str, clock=VirtualClock())
    cache.get(1)
    with recording() as history:
        cache.get(1)
    assert [(e.kind, dict(e.attrs)) for e in history] == [("cache.hit", {"key": 1, "bytes":
                                                                         cache.tracked_bytes()})]
    assert cache.stats().hits == 1


# -- keyed rate limiter ------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(rate=st.sampled_from([0.5, 3.0, 49.0, 1000.0]), capacity=st.sampled_from([1, 2.5, 10]),
       steps=st.lists(st.tuples(st.integers(0, 900), st.sampled_from([0.5, 1, 2, 3])),
                      max_size=60))
def test_a_key_decides_like_its_own_token_bucket(rate: float, capacity: float,
                                                 steps: list[tuple[int, float]]) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(default=(rate, capacity), clock=clock)
    bucket = TokenBucket(rate, capacity, clock=clock)
    for millis, n in steps:
        clock.advance(millis / 1000)
        if n > capacity:
            continue
        assert limiter.try_acquire("user-1", n) == bucket.try_acquire(n)
        assert limiter["user-1"].tokens == bucket.tokens


def test_keys_cost_little_memory_each() -> None:
    keys = [f"user-{i}" for i in range(20_000)]
    tracemalloc.start()
    try:
        limiter = RateLimiter(default=(10.0, 5.0), clock=VirtualClock())
        for key in keys:
            limiter.try_acquire(key)
        per_key = tracemalloc.get_traced_memory()[0] / len(keys)
    finally:
        tracemalloc.stop()
    assert per_key <= 160


def test_a_keys_bucket_is_a_view_of_its_tokens() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(default=(1.0, 3.0), clock=clock)
    assert "ip-1" not in limiter
    view = limiter["ip-1"]
    assert view.try_acquire(2)
    assert "ip-1" in limiter
    assert limiter["ip-1"].tokens == 1.0
    assert not limiter.try_acquire("ip-1", 2)
    assert limiter.acquire("ip-1", 2) == 1.0  # waits for the missing token
    limiter.configure("ip-1", rate=100.0, capacity=100.0)  # a limit of its own from now on
    assert limiter["ip-1"].capacity == 100.0
    assert limiter.try_acquire("ip-1", 50)


def test_a_key_refuses_impossible_amounts_with_the_buckets_message() -> None:
    limiter = RateLimiter(default=(1.0, 3.0), clock=VirtualClock())
    bucket = TokenBucket(1.0, 3.0, clock=VirtualClock())
    for n in (0, -1, 4, float("nan"), "1"):
        with pytest.raises((ValueError, TypeError)) as expected:
            bucket.try_acquire(n)  # type: ignore[arg-type]
        with pytest.raises(expected.type) as info:
            limiter.try_acquire("k", n)  # type: ignore[arg-type]
        assert str(info.value) == str(expected.value)
    assert str(info.value).startswith("n='1' is not")  # the last one, for the wording
    assert "k" not in limiter  # nothing was taken from a key


def test_a_key_emits_what_a_bucket_emits() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(default=(1.0, 1.0), clock=clock)
    with recording() as history:
        limiter.try_acquire("k")
        limiter.try_acquire("k")
        limiter.acquire("k")
    assert [(e.kind, e.source, dict(e.attrs)) for e in history] == [
        ("ratelimit.acquired", "k", {"tokens": 1, "waited": 0.0}),
        ("ratelimit.rejected", "k", {"tokens": 1, "waited": 0.0}),
        ("ratelimit.acquired", "k", {"tokens": 1, "waited": 1.0}),
    ]


def test_keys_taken_from_many_threads_never_exceed_the_limit() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(default=(1.0, 100.0), clock=clock)
    granted = []

    def work() -> None:
        granted.append(sum(limiter.try_acquire(f"k{i % 3}") for i in range(3_000)))

    in_threads(work)
    assert sum(granted) == 300  # 100 per key, no refill on a still clock


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_retried_call_that_succeeds_leaves_no_cycle_to_collect(mode: str) -> None:
    """Attempts hold their exceptions, whose tracebacks hold the retry's frame: a
    success lets go of them (cycles of frames cost about a microsecond a call)."""
    import asyncio
    import gc

    policy = Retry(attempts=3, clock=VirtualClock())
    calls = iter(range(100))

    def flaky() -> int:
        if next(calls) % 3 != 2:
            raise ConnectionError("down")
        return 1

    async def aflaky() -> int:
        return flaky()

    def once() -> int:
        return policy.call(flaky) if mode == "sync" else asyncio.run(policy.acall(aflaky))

    once()  # warm up (imports, caches)
    gc.collect()
    gc.disable()
    try:
        assert once() == 1
        assert gc.collect() == 0
    finally:
        gc.enable()
