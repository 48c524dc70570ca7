"""Circuit breaker overhead side by side: closed-path call, and 8 threads x 20 ms.

Run: ``pytest benchmarks/test_bench_breaker.py --benchmark-only``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from pytest_resilience._breaker import CircuitBreaker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def target() -> int:
    return 1


@pytest.mark.benchmark(group="breaker-closed")
def test_direct_call(benchmark: Any) -> None:
    assert benchmark(target) == 1


@pytest.mark.benchmark(group="breaker-closed")
def test_ours_closed_call(benchmark: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=5)
    assert benchmark(breaker.call, target) == 1


@pytest.mark.benchmark(group="breaker-closed")
def test_ours_closed_decorator(benchmark: Any) -> None:
    assert benchmark(CircuitBreaker(failure_threshold=5)(target)) == 1


@pytest.mark.benchmark(group="breaker-closed")
def test_ours_closed_rate_window(benchmark: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.5, window_size=100)
    assert benchmark(breaker.call, target) == 1


@pytest.mark.benchmark(group="breaker-closed")
def test_pybreaker_closed_call(benchmark: Any) -> None:
    pybreaker = pytest.importorskip("pybreaker")
    assert benchmark(pybreaker.CircuitBreaker(fail_max=5).call, target) == 1


@pytest.mark.benchmark(group="breaker-closed")
def test_purgatory_closed_decorator(benchmark: Any) -> None:
    purgatory = pytest.importorskip("purgatory")
    factory = purgatory.SyncCircuitBreakerFactory()
    assert benchmark(factory(circuit="bench")(target)) == 1


def io_call() -> None:
    time.sleep(0.02)


def eight_threads(call: Callable[[Callable[[], None]], Any]) -> Callable[[], None]:
    def run() -> None:
        threads = [threading.Thread(target=call, args=(io_call,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)

    return run


@pytest.mark.benchmark(group="breaker-8-threads-x-20ms")
def test_unprotected_8_threads(benchmark: Any) -> None:
    benchmark.pedantic(eight_threads(lambda fn: fn()), rounds=5)


@pytest.mark.benchmark(group="breaker-8-threads-x-20ms")
def test_ours_8_threads(benchmark: Any) -> None:
    benchmark.pedantic(eight_threads(CircuitBreaker(failure_threshold=5).call), rounds=5)


@pytest.mark.benchmark(group="breaker-8-threads-x-20ms")
def test_ours_timed_window_8_threads(benchmark: Any) -> None:
    breaker = CircuitBreaker(failure_rate=0.5, slow_call_duration=1.0, slow_call_rate=0.5)
    benchmark.pedantic(eight_threads(breaker.call), rounds=5)


@pytest.mark.benchmark(group="breaker-8-threads-x-20ms")
def test_pybreaker_8_threads(benchmark: Any) -> None:
    pybreaker = pytest.importorskip("pybreaker")
    benchmark.pedantic(eight_threads(pybreaker.CircuitBreaker(fail_max=5).call), rounds=5)
