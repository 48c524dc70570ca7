"""Memory benchmarks: pressure reading to eviction done; ModelCache hits vs cachetools."""

from __future__ import annotations

import pytest

from pytest_resilience.clock import VirtualClock
from pytest_resilience.memory import MemoryPressureMonitor, MemoryReading, ModelCache


def test_eviction_reaction(benchmark: pytest.FixtureRequest) -> None:
    clock = VirtualClock()
    cache = ModelCache(clock=clock)
    monitor = MemoryPressureMonitor(cooldown=0.0, clock=clock,
                                    reader=lambda: MemoryReading(90, 100, "bench"))
    monitor.register(cache)

    def react() -> None:
        for key in range(10):
            cache.put(key, b"x" * 100, size=100)
        monitor.check()

    benchmark(react)
    assert cache.stats().evictions["pressure"] > 0


def test_cache_hit_resilience(benchmark: pytest.FixtureRequest) -> None:
    cache = ModelCache(loader=lambda k: b"x", clock=VirtualClock())
    cache.get("k")
    benchmark(cache.get, "k")


def test_cache_hit_cachetools(benchmark: pytest.FixtureRequest) -> None:
    cachetools = pytest.importorskip("cachetools")
    cache = cachetools.TTLCache(maxsize=10, ttl=600)
    cache["k"] = b"x"
    benchmark(cache.__getitem__, "k")
