"""Rate limiter overhead side by side: a never-blocking ``try_acquire``, sync and async,
and a keyed limiter (one limit per user) over 100,000 keys.

Run: ``pytest benchmarks/test_bench_ratelimit.py --benchmark-only``.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from pytest_resilience._ratelimit import RateLimiter, TokenBucket

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


@pytest.mark.benchmark(group="limiter-async-acquire-x1000")
def test_ours_aacquire(benchmark: Any, run_many: Any) -> None:
    bucket = TokenBucket(rate=HUGE, capacity=HUGE)
    benchmark(run_many(bucket.aacquire))


@pytest.mark.benchmark(group="limiter-async-acquire-x1000")
def test_aiolimiter_acquire(benchmark: Any, run_many: Any) -> None:
    aiolimiter = pytest.importorskip("aiolimiter")
    limiter = aiolimiter.AsyncLimiter(HUGE, 1)
    benchmark(run_many(limiter.acquire))


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


# -- keyed: 100,000 keys round-robin vs one key ------------------------------------------
KEYS = [f"user-{i:06d}" for i in range(100_000)]
ONE_KEY = [KEYS[0]] * len(KEYS)
KEYED_ROUNDS = 7


def keyed_figures(benchmark: Any, make: Callable[[], Any],
                  acquire: Callable[[Any], Callable[[str], Any]]) -> None:
    """Each round: 100,000 calls cycling over every key, then 100,000 calls on one key
    of the same limiter (timed by hand, same conditions); the benchmark's own figure is
    the round-robin pass. ``extra_info``: seconds per call for both, the growth, and the
    bytes each key holds (tracemalloc, keys made beforehand)."""
    gc.collect()
    tracemalloc.start()
    limiter = make()
    take = acquire(limiter)
    for key in KEYS:
        take(key)
    per_key = tracemalloc.get_traced_memory()[0] / len(KEYS)
    tracemalloc.stop()
    one: list[float] = []
    many: list[float] = []

    def cycle(keys: list[str]) -> float:
        started = time.perf_counter()
        for key in keys:
            take(key)
        return (time.perf_counter() - started) / len(keys)

    def both() -> None:
        many.append(cycle(KEYS))
        one.append(cycle(ONE_KEY))

    benchmark.pedantic(both, rounds=KEYED_ROUNDS, warmup_rounds=1)
    one_s, many_s = statistics.median(one), statistics.median(many)
    benchmark.extra_info.update(
        one_key_s_per_call=one_s, many_keys_s_per_call=many_s,
        growth_percent=round(100 * (many_s / one_s - 1), 1),
        bytes_per_key=round(per_key, 1), keys=len(KEYS))


@pytest.mark.benchmark(group="limiter-100k-keys-round-robin")
def test_ours_keyed_100k_keys(benchmark: Any) -> None:
    keyed_figures(benchmark, lambda: RateLimiter(default=(HUGE, HUGE)),
                  lambda limiter: limiter.try_acquire)


@pytest.mark.benchmark(group="limiter-100k-keys-round-robin")
def test_limits_keyed_100k_keys(benchmark: Any) -> None:
    """limits' fixed window in memory, one key per user (its expiry thread stopped at
    the end)."""
    limits = pytest.importorskip("limits")
    item = limits.parse(f"{HUGE}/hour")
    storages: list[Any] = []

    def make() -> Any:
        storage = limits.storage.MemoryStorage()
        storages.append(storage)
        return limits.strategies.FixedWindowRateLimiter(storage)

    try:
        keyed_figures(benchmark, make, lambda limiter: lambda key: limiter.hit(item, key))
    finally:
        for storage in storages:
            timer = getattr(storage, "timer", None)
            if timer is not None:
                timer.cancel()


@pytest.mark.benchmark(group="limiter-100k-keys-round-robin")
def test_floor_dict_get_100k_keys(benchmark: Any) -> None:
    """The floor: a bare ``dict.get`` per key. What any keyed limiter pays to find a key
    that is not in the CPU's caches, measured the same way."""
    keyed_figures(benchmark, dict, lambda table: lambda key: table.setdefault(key, 0))
