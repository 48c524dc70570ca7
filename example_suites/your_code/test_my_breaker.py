"""A breaker opened by failures lets a trial call through once its reset time passed."""

from __future__ import annotations

import contextlib

import pytest
from my_breaker import Breaker, BreakerOpen, StuckBreaker, unreachable
from twins import twins

from pytest_resilience.checks import check_breaker
from pytest_resilience.observe import watch_breaker, watch_sleeps


@pytest.mark.parametrize("breaker_cls", twins(Breaker, StuckBreaker, "never half-opens"))
def test_half_opens_after_its_reset_time(breaker_cls, clock, history):  # type: ignore[no-untyped-def]
    breaker = breaker_cls(threshold=3, reset_after=30.0)
    with watch_sleeps(clock), watch_breaker(breaker, call="call"):
        for _ in range(6):  # t = 0, 10, 20 fail and open it; 50 is 30s later
            with contextlib.suppress(ConnectionError, BreakerOpen):
                breaker.call(unreachable)
            clock.advance(10)
    check_breaker(history, recovery_timeout=30.0).assert_ok()
