"""Memory components and faults: levels, hysteresis, cache, pressure fault, fake GPU."""

from __future__ import annotations

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faults.memory import memory_pressure
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import recording
from pytest_resilience.memory import (
    MemoryPressureMonitor,
    ModelCache,
    PressureLevel,
)
from pytest_resilience.memory._levels import next_level

T = (0.70, 0.80, 0.95)


@settings(max_examples=60)
@given(st.lists(st.floats(0.0, 1.0), max_size=60))
def test_level_changes_only_at_threshold_or_hysteresis_below(trace: list[float]) -> None:
    level = PressureLevel.NORMAL
    for fraction in trace:
        new = next_level(level, fraction, T, 0.05)
        if new > level:
            assert fraction >= T[new - 1]
        if new < level:
            assert fraction < T[level - 1] - 0.05
        level = new


@settings(max_examples=60)
@given(st.lists(st.floats(0.751, 0.85), min_size=1, max_size=60))
def test_hovering_at_threshold_does_not_thrash(trace: list[float]) -> None:
    level, changes = PressureLevel.NORMAL, 0
    for fraction in [0.81, *trace]:
        new = next_level(level, fraction, T, 0.05)
        changes += new != level
        level = new
    assert changes == 1
    assert level == PressureLevel.CRITICAL


def test_cache_lru_ttl_and_stats() -> None:
    clock = VirtualClock()
    cache = ModelCache(capacity_bytes=20, ttl=10.0, clock=clock, loader=lambda k: b"x" * 8)
    cache.get("a")
    cache.get("b")
    cache.get("a")
    cache.get("c")  # 24 bytes > 20: evicts LRU "b"
    assert cache.keys() == ["a", "c"]
    clock.advance(10.0)
    assert cache.expire() == 2
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.evictions) == (1, 3, {"lru": 1, "ttl": 2})


def test_psutil_reports_injected_pressure_and_monitor_evicts() -> None:
    clock = VirtualClock()
    cache = ModelCache(clock=clock)
    for key in "abcd":
        cache.put(key, b"x" * 100)
    monitor = MemoryPressureMonitor(clock=clock, cgroup_root=None)
    monitor.register(cache)
    with recording() as history, memory_pressure(90):
        assert psutil.virtual_memory().percent == pytest.approx(90, abs=0.5)
        assert monitor.check() is PressureLevel.CRITICAL
    assert psutil.PROCFS_PATH == "/proc"
    assert cache.stats().evictions == {"pressure": 2}  # 30% of 400 bytes
    assert history.select("memory.pressure")[0].attrs["level"] == "critical"


def test_bad_ttl_message() -> None:
    with pytest.raises(ValueError) as info:
        ModelCache(ttl=0)
    assert str(info.value) == (
        "ttl=0 is not a valid lifetime. Pass finite seconds > 0; every entry has a TTL "
        "(default 600)."
    )
