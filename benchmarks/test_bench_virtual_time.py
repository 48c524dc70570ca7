"""Virtual-time speed-up: 10+ minutes of backoff and breaker recovery in well under 1 s.

A client calls an upstream that is down for the first 10 virtual minutes through
``Retry`` (exponential backoff, capped at 60 s) inside a ``CircuitBreaker`` (opens after
5 failures, 60 s recovery timeout); an open breaker makes the client wait out
``retry_after``. Everything runs on a ``VirtualClock``. The figure is virtual seconds
per real second (``extra_info``); the target is the whole scenario in under 1 s.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_virtual_time.py --benchmark-only``.
"""

from __future__ import annotations

from typing import Any

from pytest_resilience._backoff import Backoff
from pytest_resilience._breaker import CircuitBreaker
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import CircuitOpenError, RetryError
from pytest_resilience._retry import Retry

OUTAGE = 600.0  # the upstream is down for the first 10 virtual minutes
MAX_CALLS = 1_000  # bound on the client loop


def outage_scenario() -> tuple[float, int]:
    """Run until the upstream answers; returns (virtual seconds elapsed, client calls)."""
    clock = VirtualClock()
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=60.0,
                             expected=(ConnectionError,), clock=clock)
    policy = Retry(attempts=6, backoff=Backoff.exponential(base=1.0, factor=2.0, max=60.0),
                   jitter="full", seed=7, retry_on=(ConnectionError,), clock=clock)

    def upstream() -> str:
        if clock.monotonic() < OUTAGE:
            raise ConnectionError("upstream down")
        return "ok"

    for calls in range(1, MAX_CALLS + 1):
        try:
            policy.call(breaker.call, upstream)
        except CircuitOpenError as exc:
            clock.sleep(exc.retry_after)                   # wait out the recovery timeout
        except RetryError:
            continue
        else:
            return clock.monotonic(), calls
    raise AssertionError(f"upstream never answered within {MAX_CALLS} calls")


def test_ten_minutes_of_backoff_and_recovery(benchmark: Any) -> None:
    """Target: the whole scenario (>= 600 virtual seconds) in under 1 real second."""
    virtual, calls = benchmark.pedantic(outage_scenario, rounds=50, warmup_rounds=2)
    assert virtual >= OUTAGE
    real = benchmark.stats.stats.median
    benchmark.extra_info.update({
        "virtual_seconds": round(virtual, 1),
        "client_calls": calls,
        "virtual_seconds_per_real_second": round(virtual / real),
        "target": "< 1 s real",
    })
    assert real < 1.0, f"{virtual:.0f} virtual seconds took {real:.3f} s (target < 1 s)"
