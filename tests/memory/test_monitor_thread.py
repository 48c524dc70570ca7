"""MemoryPressureMonitor: background thread, status, cooldown, priorities, callbacks."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import recording
from pytest_resilience.memory import (
    MemoryPressureMonitor,
    MemoryReading,
    ModelCache,
    PressureChange,
    PressureLevel,
)

WAIT = 10.0  # bound on waiting for the thread; never reached when it works


class Trace:
    """A reader returning a settable fraction, signalling each call on an Event."""

    def __init__(self, percent: int = 50) -> None:
        self.percent = percent
        self.calls = 0
        self.called = threading.Event()

    def __call__(self) -> MemoryReading:
        self.calls += 1
        self.called.set()
        return MemoryReading(self.percent, 100, "trace")


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("resilience-")}


def test_thread_starts_checks_stops_and_leaves_nothing_behind() -> None:
    before = _threads()
    reader = Trace(85)
    seen: list[PressureChange] = []
    monitor = MemoryPressureMonitor(reader=reader, interval=3600.0, clock=VirtualClock(),
                                    name="bg")
    monitor.on_change(seen.append)
    monitor.start()
    try:
        assert monitor.running
        assert reader.called.wait(WAIT)
        assert [t.name for t in _threads() - before] == ["resilience-bg"]
        with pytest.raises(RuntimeError) as info:
            monitor.start()
        assert str(info.value) == "monitor 'bg' is already running. Call stop() first."
    finally:
        monitor.stop()
    assert not monitor.running
    assert _threads() == before
    # the long interval means exactly one check ran: stop() woke the waiting thread
    assert reader.calls == 1
    assert monitor.level is PressureLevel.CRITICAL
    assert [(c.previous, c.level) for c in seen] == [(PressureLevel.NORMAL,
                                                       PressureLevel.CRITICAL)]
    monitor.stop()  # idempotent
    monitor.join()
    assert _threads() == before


def test_context_manager_and_restart() -> None:
    before = _threads()
    reader = Trace()
    monitor = MemoryPressureMonitor(reader=reader, interval=3600.0, clock=VirtualClock())
    with monitor:
        assert reader.called.wait(WAIT)
        assert monitor.status()["running"] is True
    assert monitor.status()["running"] is False
    reader.called.clear()
    with monitor:  # a stopped monitor starts again
        assert reader.called.wait(WAIT)
    assert reader.calls == 2
    assert _threads() == before


def test_thread_survives_a_failing_check() -> None:
    before = _threads()
    attempts: list[int] = []
    second = threading.Event()

    def flaky() -> MemoryReading:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("meminfo vanished")
        second.set()
        return MemoryReading(10, 100, "trace")

    monitor = MemoryPressureMonitor(reader=flaky, interval=0.001, clock=VirtualClock())
    with monitor:
        assert second.wait(WAIT)  # the thread went on after the failure
        assert monitor.running
    status = monitor.status()
    assert (status["thread_errors"], status["last_error"]) == (
        1, "OSError('meminfo vanished')")
    assert status["available"] is True
    assert _threads() == before


def test_status_shape_and_json() -> None:
    clock = VirtualClock()
    cache = ModelCache(clock=clock, name="llm")
    cache.put("a", b"", size=1000)
    monitor = MemoryPressureMonitor(reader=Trace(75), clock=clock, name="host")
    monitor.register(cache)
    monitor.check()
    status = monitor.status()
    assert status == {
        "name": "host",
        "available": True,
        "level": "warning",
        "reading": {"used": 75, "total": 100, "source": "trace", "percent": 75.0},
        "thresholds": {"warning": 0.70, "critical": 0.80, "emergency": 0.95},
        "hysteresis": 0.05,
        "caches": ["llm"],
        "evictions": 1,
        "evicted_bytes": 1000,
        "running": False,
        "thread_errors": 0,
        "last_error": None,
    }
    assert json.loads(monitor.status_json()) == status


def test_cooldown_between_evictions_on_virtual_clock() -> None:
    clock = VirtualClock()
    cache = ModelCache(clock=clock)
    for key in range(10):
        cache.put(key, b"", size=100)
    monitor = MemoryPressureMonitor(reader=Trace(90), cooldown=30.0, clock=clock)
    monitor.register(cache)
    monitor.check()  # critical: 30% of 1000 bytes
    assert cache.tracked_bytes() == 700
    clock.advance(29.9)
    monitor.check()
    assert cache.tracked_bytes() == 700  # still cooling down
    clock.advance(0.1)
    monitor.check()  # 30% of 700 = 210 -> three entries of 100
    assert cache.tracked_bytes() == 400
    assert monitor.status()["evictions"] == 2
    assert cache.stats().evictions == {"pressure": 6}


def test_priority_orders_eviction_across_caches() -> None:
    clock = VirtualClock()
    precious = ModelCache(clock=clock, name="precious")
    scratch = ModelCache(clock=clock, name="scratch")
    for key in range(5):
        precious.put(key, b"", size=100)
        scratch.put(key, b"", size=100)
    monitor = MemoryPressureMonitor(reader=Trace(96), clock=clock)
    monitor.register(precious, priority=10)
    monitor.register(scratch, priority=1)
    with recording() as history:
        monitor.check()  # emergency: 50% of 1000 = 500 bytes, all from scratch
    assert (scratch.tracked_bytes(), precious.tracked_bytes()) == (0, 500)
    assert {e.source for e in history.select("cache.evict")} == {"scratch"}
    assert monitor.status()["caches"] == ["scratch", "precious"]
    clock.advance(30.0)
    monitor.check()  # 50% of 500 = 250 -> three of precious' LRU entries
    assert precious.keys() == [3, 4]


def test_callbacks_see_every_change_and_can_be_removed() -> None:
    reader = Trace(50)
    monitor = MemoryPressureMonitor(reader=reader, clock=VirtualClock())
    seen: list[tuple[str, str, float]] = []
    remove = monitor.on_change(
        lambda c: seen.append((c.previous.label, c.level.label, c.reading.fraction)))
    for percent in (72, 74, 66, 64, 96, 80):
        reader.percent = percent
        monitor.check()
    assert seen == [("normal", "warning", 0.72), ("warning", "normal", 0.64),
                    ("normal", "emergency", 0.96), ("emergency", "critical", 0.80)]
    remove()
    remove()  # removing twice is harmless
    reader.percent = 10
    assert monitor.check() is PressureLevel.NORMAL
    assert len(seen) == 4


def test_unavailable_without_psutil_never_evicts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # `import psutil` raises ImportError
    clock = VirtualClock()
    cache = ModelCache(clock=clock)
    cache.put("a", b"", size=100)
    monitor = MemoryPressureMonitor(cgroup_root=None, clock=clock)
    monitor.register(cache)
    with recording() as history:
        assert monitor.check() is PressureLevel.NORMAL
    status = monitor.status()
    assert (status["available"], status["level"], status["reading"]) == (
        False, "unavailable", None)
    assert cache.tracked_bytes() == 100
    assert history.select("memory.pressure") == []


def test_cgroup_limit_is_read_without_psutil(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)
    root = tmp_path
    (root / "memory.max").write_text("1000\n")
    (root / "memory.current").write_text("850\n")
    monitor = MemoryPressureMonitor(cgroup_root=root, clock=VirtualClock())
    assert monitor.check() is PressureLevel.CRITICAL
    assert monitor.status()["reading"]["source"] == "cgroup"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": 0}, "interval=0 would spin the monitor thread. Pass seconds > 0."),
        ({"cooldown": -1}, "cooldown=-1 is not a valid duration. Pass finite seconds >= 0."),
        ({"hysteresis": 0.7}, "hysteresis=0.7 is not in range. Pass a fraction >= 0 and "
                              "below the first threshold (0.7)."),
        ({"thresholds": (0.9, 0.8, 0.95)}, "thresholds=(0.9, 0.8, 0.95) are not increasing. "
                                           "Pass warning < critical < emergency."),
        ({"thresholds": (0.7, 0.8)}, "thresholds=(0.7, 0.8) must hold three fractions. Pass "
                                     "(warning, critical, emergency), e.g. (0.70, 0.80, 0.95)."),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        MemoryPressureMonitor(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_register_rejects_non_cache() -> None:
    with pytest.raises(TypeError, match=r"^cache=42 cannot be evicted\. Pass an object"):
        MemoryPressureMonitor().register(42)  # type: ignore[arg-type]
