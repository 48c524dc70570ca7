"""Rate limiter overhead side by side: a never-blocking ``try_acquire``, sync and async.

Run: ``pytest benchmarks/test_bench_ratelimit.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_resilience._ratelimit import TokenBucket

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HUGE = 10**9


@pytest.mark.benchmark(group="limiter-try-acquire")
def test_ours_try_acquire(benchmark: Any) -> None:
    bucket = TokenBucket(rate=HUGE, capacity=HUGE)
    assert benchmark(bucket.try_acquire)


@pytest.mark.benchmark(group="limiter-try-acquire")
def test_pyrate_limiter_try_acquire(benchmark: Any) -> None:
    pyrate = pytest.importorskip("pyrate_limiter")
    limiter = pyrate.Limiter(pyrate.InMemoryBucket([pyrate.Rate(HUGE, pyrate.Duration.SECOND)]))
    assert benchmark(limiter.try_acquire, "bench", blocking=False)


@pytest.mark.benchmark(group="limiter-try-acquire")
def test_limits_fixed_window_hit(benchmark: Any) -> None:
    limits = pytest.importorskip("limits")
    strategy = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())
    item = limits.parse(f"{HUGE}/second")
    assert benchmark(strategy.hit, item, "bench")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private event loop, closed after the benchmark."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def run_many(loop: asyncio.AbstractEventLoop, acquire: Callable[[], Any]) -> Callable[[], None]:
    """1,000 awaited acquisitions per round (per call = time / 1000)."""

    async def many() -> None:
        for _ in range(1000):
            await acquire()

    return lambda: loop.run_until_complete(many())


@pytest.mark.benchmark(group="limiter-async-acquire-x1000")
def test_ours_aacquire(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    bucket = TokenBucket(rate=HUGE, capacity=HUGE)
    benchmark(run_many(loop, bucket.aacquire))


@pytest.mark.benchmark(group="limiter-async-acquire-x1000")
def test_aiolimiter_acquire(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    aiolimiter = pytest.importorskip("aiolimiter")
    limiter = aiolimiter.AsyncLimiter(HUGE, 1)
    benchmark(run_many(loop, limiter.acquire))


@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.benchmark(group="limiter-try-acquire-under-load")
def test_ours_try_acquire_under_load(benchmark: Any, threads: int) -> None:
    """``try_acquire`` while other threads hammer the same bucket: stays flat."""
    import threading

    bucket = TokenBucket(rate=HUGE, capacity=HUGE)
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            bucket.try_acquire()

    workers = [threading.Thread(target=hammer) for _ in range(threads - 1)]
    for w in workers:
        w.start()
    try:
        assert benchmark(bucket.try_acquire)
    finally:
        stop.set()
        for w in workers:
            w.join(10)
