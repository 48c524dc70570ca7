"""The histories our components write pass the project's own checkers."""

from __future__ import annotations

import contextlib

import pytest

from pytest_resilience._backoff import Backoff
from pytest_resilience._breaker import CircuitBreaker
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import CircuitOpenError, RetryError
from pytest_resilience._events import recording
from pytest_resilience._retry import Retry

check_retry = pytest.importorskip("pytest_resilience.checks._retry").check_retry
check_breaker = pytest.importorskip("pytest_resilience.checks._breaker").check_breaker


def always_down() -> None:
    raise ConnectionError("down")


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated", "none"])
def test_retry_history_passes_the_retry_checker(jitter: str) -> None:
    backoff = Backoff.exponential(base=0.5, factor=2.0, max=3.0)
    policy = Retry(attempts=6, backoff=backoff, jitter=jitter, deadline=20.0, seed=11,
                   clock=VirtualClock(), name="api")
    with recording() as history:
        for _ in range(3):
            with pytest.raises(RetryError):
                policy.call(always_down)
    verdict = check_retry(history, source="api", attempts=6, backoff=backoff, jitter=jitter,
                          deadline=20.0)
    assert verdict.ok, verdict.explanation


def test_breaker_history_passes_the_breaker_checker() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=5.0, clock=clock, name="db")
    with recording() as history:
        for step in range(30):
            with contextlib.suppress(ConnectionError, CircuitOpenError):
                breaker.call(always_down if step % 4 else (lambda: None))
            clock.advance(1.0)
    assert len(history.select("breaker.transition")) >= 3
    verdict = check_breaker(history, source="db", recovery_timeout=5.0)
    assert verdict.ok, verdict.explanation
