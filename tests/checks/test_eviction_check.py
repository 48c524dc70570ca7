"""The eviction checker on scripted histories."""

from __future__ import annotations

import pytest

from pytest_resilience._events import History
from pytest_resilience.checks import check_eviction


class Script:
    def __init__(self) -> None:
        self.history = History()
        self.t = 0.0

    def load(self, key: str, size: int = 10) -> Script:
        self.history.append("cache.load", "c", time=self.t, attrs={"key": key, "bytes": size})
        return self

    def hit(self, key: str) -> Script:
        self.history.append("cache.hit", "c", time=self.t, attrs={"key": key, "bytes": 10})
        return self

    def evict(self, key: str, cause: str = "lru", size: int = 10) -> Script:
        self.history.append("cache.evict", "c", time=self.t,
                            attrs={"key": key, "bytes": size, "cause": cause})
        return self

    def pressure(self, level: str) -> Script:
        self.history.append("memory.pressure", "m", time=self.t,
                            attrs={"level": level, "previous": "normal", "percent": 95.0})
        return self

    def wait(self, seconds: float) -> Script:
        self.t += seconds
        return self


def test_lru_order_passes() -> None:
    s = Script().load("a").load("b").hit("a").load("c").evict("b")
    verdict = check_eviction(s.history, capacity_bytes=20)
    assert verdict.ok, verdict.explanation


def test_evicting_the_most_recently_used_is_named() -> None:
    s = Script().load("a").load("b").hit("a").evict("a")
    verdict = check_eviction(s.history)
    assert not verdict.ok
    assert "Cache 'c' evicted 'a' (lru) while 'b' was less recently used" in verdict.explanation
    assert [e.kind for e in verdict.events] == ["cache.load", "cache.load", "cache.evict"]


def test_ttl_and_manual_evictions_may_take_any_key() -> None:
    s = Script().load("a").load("b").evict("b", cause="ttl").evict("a", cause="manual")
    assert check_eviction(s.history).ok


def test_evicting_a_key_that_is_not_resident_is_named() -> None:
    assert "evicted key 'zz', which was not resident" in check_eviction(
        Script().load("a").evict("zz").history).explanation


def test_capacity_overflow_without_eviction_is_caught() -> None:
    verdict = check_eviction(Script().load("a").load("b").load("c").history, capacity_bytes=20)
    assert "Resident bytes reached 30, above the capacity of 20" in verdict.explanation


def test_pressure_must_be_answered_by_eviction() -> None:
    s = Script().load("a").pressure("critical")
    verdict = check_eviction(s.history)
    assert not verdict.ok
    assert "Memory pressure 'critical' with 10 bytes resident was not followed by any " \
        "eviction" in verdict.explanation
    assert check_eviction(Script().load("a").pressure("warning").history).ok


def test_pressure_answered_too_late_is_caught() -> None:
    s = Script().load("a").load("b").pressure("emergency").wait(5).evict("a", "pressure")
    assert check_eviction(s.history).ok
    verdict = check_eviction(s.history, within=1.0)
    assert "not answered by an eviction within 1s" in verdict.explanation


def test_the_target_must_be_freed() -> None:
    s = Script().load("a").load("b").pressure("critical").evict("a", "pressure")
    assert check_eviction(s.history, target_bytes=10).ok
    verdict = check_eviction(s.history, target_bytes=20)
    assert "freed 10 bytes, short of the 20-byte target" in verdict.explanation


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        check_eviction(History(), pressure_level="high")
    assert str(info.value).startswith("pressure_level='high' is not a level.")


def fault(history: History, percent: float, t: float = 0.0) -> None:
    history.append("fault.fired", "memory_pressure", time=t,
                   attrs={"family": "memory", "action": "pressure", "trigger": "set",
                          "call": 0, "percent": percent})


def test_a_memory_fault_reading_is_pressure() -> None:
    s = Script().load("a")
    fault(s.history, 95.0)
    fault(s.history, 95.0)  # the same reading again, before the cache did anything
    verdict = check_eviction(s.history)
    assert verdict.explanation.startswith("Memory pressure 'emergency' with 10 bytes "
                                          "resident was not followed by any eviction. "
                                          "Events: #1 fault.fired[memory_pressure]")
    s.evict("a", "pressure")
    assert check_eviction(s.history).ok
    calm = Script().load("a")
    fault(calm.history, 75.0)
    assert check_eviction(calm.history).ok  # 75% is a warning, below "critical"


def test_the_memory_pressure_fault_with_a_watched_cache() -> None:
    pytest.importorskip("psutil")
    from faults.memory import memory_pressure
    from pytest_resilience import recording
    from pytest_resilience.observe import watch_cache

    class Models:
        def __init__(self) -> None:
            self.loaded: dict[str, bytes] = {}

        def put(self, name: str, blob: bytes) -> None:
            self.loaded[name] = blob

        def shrink(self) -> None:
            self.loaded.pop(next(iter(self.loaded)))

    cache = Models()
    with recording(History()) as history, watch_cache(cache):
        cache.put("a", b"x" * 100)
        cache.put("b", b"y" * 100)
        with memory_pressure(90):
            cache.shrink()  # an unwatched method: the eviction is seen at the next put
            cache.put("c", b"z")
    assert [e.attrs.get("cause") for e in history.select("cache.evict")] == ["pressure"]
    assert check_eviction(history).ok
