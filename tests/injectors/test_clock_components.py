"""Which components rely on which clock: an NTP step of wall time must not move them.

A breaker's recovery timeout, a retry deadline and a cache TTL measure durations, so they
must follow monotonic time. A TTL on wall time is a bug, and a wall-clock skew exposes it.
"""

from __future__ import annotations

import pytest

from faults import clock as clock_faults
from pytest_resilience._breaker import BreakerState, CircuitBreaker
from pytest_resilience._clock import Clock, VirtualClock
from pytest_resilience._errors import CircuitOpenError, RetryError
from pytest_resilience._retry import Retry
from pytest_resilience.memory._cache import ModelCache

HOUR = 3600.0


def fail() -> None:
    raise ConnectionError("down")


def tripped(clock: Clock | None) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=30, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.call(fail)
    assert breaker.state is BreakerState.OPEN
    return breaker


@pytest.mark.parametrize("wall_step", [-HOUR, HOUR])
def test_breaker_recovery_follows_monotonic_time(wall_step: float) -> None:
    clock = VirtualClock()
    breaker = tripped(clock)
    with clock_faults.skew(wall_step, clock=clock):
        clock.advance(29)
        with pytest.raises(CircuitOpenError):
            breaker.call(lambda: "ok")
        clock.advance(1)
        assert breaker.state is BreakerState.HALF_OPEN
        assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is BreakerState.CLOSED


def test_breaker_on_the_process_clock_follows_monotonic_not_wall() -> None:
    breaker = tripped(clock=None)  # the real clocks
    with clock_faults.skew(HOUR):  # wall time only: still open
        assert breaker.state is BreakerState.OPEN
    with clock_faults.skew(HOUR, target="monotonic"):  # an hour passes: trial admitted
        assert breaker.state is BreakerState.HALF_OPEN


def test_retry_deadline_ignores_wall_steps() -> None:
    clock = VirtualClock()
    calls = []

    def flaky() -> None:
        calls.append(clock.monotonic())
        raise ConnectionError("down")

    retry = Retry(attempts=50, deadline=10, retry_on=ConnectionError, clock=clock, seed=1)
    with clock_faults.skew(-HOUR, clock=clock), pytest.raises(RetryError):
        retry.call(flaky)
    assert calls[-1] <= 10  # stopped by the monotonic deadline, not by wall time
    assert len(calls) > 1


@pytest.mark.parametrize("wall_step", [-HOUR, HOUR])
def test_model_cache_ttl_follows_monotonic_time(wall_step: float) -> None:
    clock = VirtualClock()
    cache = ModelCache(ttl=60, clock=clock)
    cache.put("model", object(), size=1)
    with clock_faults.skew(wall_step, clock=clock):
        assert "model" in cache
        clock.advance(61)
        assert "model" not in cache


class WallTTL:
    """A cache that measures its TTL on wall time: the bug this harness exposes."""

    def __init__(self, ttl: float, clock: Clock) -> None:
        self.ttl, self.clock, self.expires = ttl, clock, {}

    def put(self, key: str) -> None:
        self.expires[key] = self.clock.time() + self.ttl

    def __contains__(self, key: str) -> bool:
        return self.expires.get(key, 0) > self.clock.time()


def ttl_survives_an_ntp_step_back(make: type[WallTTL] | type[ModelCache]) -> bool:
    """Harness check: does an entry outlive its 60 s TTL when wall time steps back?"""
    clock = VirtualClock()
    cache = make(ttl=60, clock=clock)
    if isinstance(cache, WallTTL):
        cache.put("k")
    else:
        cache.put("k", 1, size=1)
    with clock_faults.skew(-HOUR, clock=clock):
        clock.advance(120)
        return "k" in cache


def test_a_wall_clock_ttl_is_exposed_and_a_monotonic_one_passes() -> None:
    assert ttl_survives_an_ntp_step_back(WallTTL)  # the bug: lives an hour too long
    assert not ttl_survives_an_ntp_step_back(ModelCache)
