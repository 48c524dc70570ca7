"""Adapters: tenacity and pybreaker histories judged by the checkers (cachetools caches
are watched with ``watch_cache``: tests/observers/test_watch_cache.py)."""

from __future__ import annotations

import pytest

from pytest_resilience._backoff import Backoff
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import History
from pytest_resilience.checks import (
    PybreakerRecorder,
    TenacityRecorder,
    check_breaker,
    check_retry,
)


def test_tenacity_history_passes_the_retry_checker() -> None:
    tenacity = pytest.importorskip("tenacity", reason="tenacity adapter")
    clock, history = VirtualClock(), History()
    recorder = TenacityRecorder(name="t", clock=clock, history=history)
    calls = []

    @tenacity.retry(stop=tenacity.stop_after_attempt(4),
                    wait=tenacity.wait_exponential(multiplier=0.1, max=1.0), reraise=True,
                    **recorder.hooks())
    def flaky() -> str:
        calls.append(clock.monotonic())
        if len(calls) < 3:
            raise ConnectionError("down")
        return "ok"

    assert flaky() == "ok"
    assert history.kinds() == ["retry.attempt", "retry.sleep"] * 2
    assert [e.attrs["delay"] for e in history.select("retry.sleep")] == [0.1, 0.2]
    assert clock.monotonic() == pytest.approx(0.3)  # slept on the virtual clock
    verdict = check_retry(history, attempts=4, backoff=Backoff.exponential(base=0.1, max=1.0),
                          jitter="none")
    assert verdict.ok, verdict.explanation


def test_tenacity_with_a_too_short_wait_is_caught() -> None:
    tenacity = pytest.importorskip("tenacity", reason="tenacity adapter")
    history = History()
    recorder = TenacityRecorder(clock=VirtualClock(), history=history)

    @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(0.01),
                    reraise=True, **recorder.hooks())
    def always_down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        always_down()
    verdict = check_retry(history, backoff=Backoff.exponential(base=0.1), jitter="equal")
    assert not verdict.ok
    assert "outside the equal-jitter envelope [0.05, 0.1]s" in verdict.explanation


def test_pybreaker_history_passes_the_breaker_checker() -> None:
    pybreaker = pytest.importorskip("pybreaker", reason="pybreaker adapter")
    history = History()
    recorder = PybreakerRecorder.listener(clock=VirtualClock(), history=history)
    breaker = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=60, listeners=[recorder],
                                       name="pb")

    def boom() -> None:
        raise ConnectionError("down")

    for _ in range(2):
        with pytest.raises((ConnectionError, pybreaker.CircuitBreakerError)):
            recorder.call(breaker, boom)
    with pytest.raises(pybreaker.CircuitBreakerError):
        recorder.call(breaker, lambda: None)
    assert history.kinds() == ["breaker.call", "breaker.call", "breaker.transition",
                               "breaker.rejected"]
    transition = history.select("breaker.transition")[0]
    assert (transition.attrs["from"], transition.attrs["to"]) == ("closed", "open")
    verdict = check_breaker(history)
    assert verdict.ok, verdict.explanation
