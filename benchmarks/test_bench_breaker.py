"""Circuit breaker overhead side by side: closed call, closed call with a failure-rate
window, rejection while open, async closed call, and 8 threads x 20 ms.

Peers: pybreaker, aiobreaker, purgatory and pyresilience (the only Python peer with a
failure-rate window). Run: ``pytest benchmarks/test_bench_breaker.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from pytest_resilience._breaker import CircuitBreaker
from pytest_resilience._errors import CircuitOpenError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOUR = 3600.0


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
def test_pybreaker_closed_call(benchmark: Any) -> None:
    pybreaker = pytest.importorskip("pybreaker")
    assert benchmark(pybreaker.CircuitBreaker(fail_max=5).call, target) == 1


@pytest.mark.benchmark(group="breaker-closed")
def test_aiobreaker_closed_call(benchmark: Any) -> None:
    aiobreaker = pytest.importorskip("aiobreaker")
    assert benchmark(aiobreaker.CircuitBreaker(fail_max=5).call, target) == 1


@pytest.mark.benchmark(group="breaker-closed")
def test_purgatory_closed_decorator(benchmark: Any) -> None:
    purgatory = pytest.importorskip("purgatory")
    factory = purgatory.SyncCircuitBreakerFactory()
    assert benchmark(factory(circuit="bench")(target)) == 1


@pytest.mark.benchmark(group="breaker-closed")
def test_pyresilience_closed_decorator(benchmark: Any) -> None:
    pyresilience = pytest.importorskip("pyresilience")
    config = pyresilience.CircuitBreakerConfig(failure_threshold=5)
    assert benchmark(pyresilience.resilient(circuit_breaker=config)(target)) == 1


# -- closed, with a failure-rate window ----------------------------------------------------
@pytest.mark.benchmark(group="breaker-closed-rate-window")
def test_ours_closed_rate_window(benchmark: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.5, window_size=100)
    assert benchmark(breaker.call, target) == 1


@pytest.mark.benchmark(group="breaker-closed-rate-window")
def test_pyresilience_closed_rate_window(benchmark: Any) -> None:
    """pyresilience's count window (failure rate over the last 100 calls)."""
    pyresilience = pytest.importorskip("pyresilience")
    config = pyresilience.CircuitBreakerConfig(sliding_window_size=100,
                                               failure_rate_threshold=0.5, minimum_calls=10)
    assert benchmark(pyresilience.resilient(circuit_breaker=config)(target)) == 1


@pytest.mark.benchmark(group="breaker-closed-rate-window")
def test_purgatory_closed_rate_window_peer(benchmark: Any) -> None:
    """purgatory has no rate window: its closed call (consecutive failures) is the cost a
    user switching from it compares against."""
    purgatory = pytest.importorskip("purgatory")
    factory = purgatory.SyncCircuitBreakerFactory()
    assert benchmark(factory(circuit="bench-window")(target)) == 1


# -- rejection while OPEN ------------------------------------------------------------------
def rejecting(call: Callable[..., Any], *args: Any, error: type[BaseException]
              ) -> Callable[[], None]:
    """One refused call, caught: what a caller of an open breaker pays."""

    def refused() -> None:
        try:
            call(*args)
        except error:
            return
        raise AssertionError("the breaker let the call through")

    return refused


def flaky() -> tuple[list[bool], Callable[[], int]]:
    failing = [True]

    def fn() -> int:
        if failing[0]:
            raise ConnectionError("down")
        return 1

    return failing, fn


@pytest.mark.benchmark(group="breaker-open-rejection")
def test_ours_open_rejection(benchmark: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=HOUR)
    with pytest.raises(ConnectionError):
        breaker.call(flaky()[1])
    benchmark(rejecting(breaker.call, target, error=CircuitOpenError))


@pytest.mark.benchmark(group="breaker-open-rejection")
def test_pybreaker_open_rejection(benchmark: Any) -> None:
    pybreaker = pytest.importorskip("pybreaker")
    breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=HOUR)
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(flaky()[1])
    benchmark(rejecting(breaker.call, target, error=pybreaker.CircuitBreakerError))


@pytest.mark.benchmark(group="breaker-open-rejection")
def test_aiobreaker_open_rejection(benchmark: Any) -> None:
    aiobreaker = pytest.importorskip("aiobreaker")
    breaker = aiobreaker.CircuitBreaker(fail_max=1,
                                        timeout_duration=datetime.timedelta(hours=1))
    with pytest.raises(aiobreaker.CircuitBreakerError):
        breaker.call(flaky()[1])
    benchmark(rejecting(breaker.call, target, error=aiobreaker.CircuitBreakerError))


@pytest.mark.benchmark(group="breaker-open-rejection")
def test_purgatory_open_rejection(benchmark: Any) -> None:
    purgatory = pytest.importorskip("purgatory")
    from purgatory.domain.model import OpenedState

    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=1, default_ttl=HOUR)
    failing, fn = flaky()
    protected = factory(circuit="bench-open")(fn)
    with pytest.raises(ConnectionError):
        protected()
    failing[0] = False
    benchmark(rejecting(protected, error=OpenedState))


@pytest.mark.benchmark(group="breaker-open-rejection")
def test_pyresilience_open_rejection(benchmark: Any) -> None:
    pyresilience = pytest.importorskip("pyresilience")
    config = pyresilience.CircuitBreakerConfig(failure_threshold=1, recovery_timeout=HOUR)
    failing, fn = flaky()
    protected = pyresilience.resilient(circuit_breaker=config)(fn)
    with pytest.raises(ConnectionError):
        protected()
    failing[0] = False
    benchmark(rejecting(protected, error=pyresilience.CircuitOpenError))


# -- async closed call ---------------------------------------------------------------------
async def atarget() -> int:
    return 1


@pytest.mark.benchmark(group="breaker-async-closed-x1000")
def test_ours_async_closed_call(benchmark: Any, run_many: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=5)
    benchmark(run_many(lambda: breaker.acall(atarget)))


@pytest.mark.benchmark(group="breaker-async-closed-x1000")
def test_aiobreaker_async_closed_call(benchmark: Any, run_many: Any) -> None:
    aiobreaker = pytest.importorskip("aiobreaker")
    breaker = aiobreaker.CircuitBreaker(fail_max=5)
    benchmark(run_many(lambda: breaker.call_async(atarget)))


@pytest.mark.benchmark(group="breaker-async-closed-x1000")
def test_purgatory_async_closed_call(benchmark: Any, loop: asyncio.AbstractEventLoop,
                                     run_many: Any) -> None:
    purgatory = pytest.importorskip("purgatory")
    factory = purgatory.AsyncCircuitBreakerFactory()
    protected = loop.run_until_complete(_purgatory_async(factory))
    benchmark(run_many(protected))


async def _purgatory_async(factory: Any) -> Callable[[], Any]:
    return factory(circuit="bench-async")(atarget)  # type: ignore[no-any-return]


# -- 8 threads x one 20 ms call ------------------------------------------------------------
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


@pytest.mark.benchmark(group="breaker-interleaved")
def test_breaker_interleaved(interleaved: Any) -> None:
    """Rejection while OPEN and a closed call with a failure-rate window, ours and the
    peers, timed in the same rounds."""
    pybreaker = pytest.importorskip("pybreaker")
    purgatory = pytest.importorskip("purgatory")
    ours_open = CircuitBreaker(failure_threshold=1, recovery_timeout=HOUR)
    with pytest.raises(ConnectionError):
        ours_open.call(flaky()[1])
    peer_open = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=HOUR)
    with pytest.raises(pybreaker.CircuitBreakerError):
        peer_open.call(flaky()[1])
    window = CircuitBreaker(failure_threshold=None, failure_rate=0.5, window_size=100)
    factory = purgatory.SyncCircuitBreakerFactory()
    interleaved({
        "ours_open_rejection": rejecting(ours_open.call, target, error=CircuitOpenError),
        "pybreaker_open_rejection": rejecting(peer_open.call, target,
                                              error=pybreaker.CircuitBreakerError),
        "ours_rate_window": lambda: window.call(target),
        "purgatory_closed": factory(circuit="bench-interleaved")(target),
    })
