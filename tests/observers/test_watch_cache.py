"""watch_cache: cache events read off a cache's own methods and the keys it holds."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

from pytest_resilience import History, VirtualClock, emit
from pytest_resilience.checks import check_eviction, check_ttl
from pytest_resilience.kinds import FAULT_FIRED
from pytest_resilience.observe import watch_cache


def events(history: History) -> list[tuple[str, Any, str | None]]:
    return [(e.kind, e.attrs["key"], e.attrs.get("cause")) for e in history
            if e.kind.startswith("cache.")]


def test_a_cachetools_lru_cache(timeline: tuple[VirtualClock, History]) -> None:
    cachetools = pytest.importorskip("cachetools")
    _, history = timeline
    cache = cachetools.LRUCache(maxsize=2)
    setitem = type(cache).__setitem__
    with watch_cache(cache, name="lru"):
        cache["a"] = 1
        cache["b"] = 2
        assert cache["a"] == 1
        cache["c"] = 3
        with pytest.raises(KeyError):
            cache["b"]
        assert cache.get("b", "none") == "none"
    assert type(cache).__setitem__ is setitem
    assert events(history) == [
        ("cache.load", "a", None), ("cache.load", "b", None), ("cache.hit", "a", None),
        ("cache.load", "c", None), ("cache.evict", "b", "lru"), ("cache.miss", "b", None),
        ("cache.miss", "b", None)]
    assert history.select("cache.evict")[0].source == "lru"
    assert check_eviction(history, capacity_bytes=2).ok


def test_a_fifo_cache_is_not_judged_as_lru(timeline: tuple[VirtualClock, History]) -> None:
    cachetools = pytest.importorskip("cachetools")
    _, history = timeline
    cache = cachetools.FIFOCache(maxsize=2)
    with watch_cache(cache):
        cache["a"], cache["b"] = 1, 2
        _ = cache["a"]
        cache["c"] = 3  # FIFO evicts "a", the most recently used
    assert history.select("cache.evict")[0].attrs["cause"] == "fifo"
    assert check_eviction(history).ok


def test_ttl_expiry_on_the_tests_clock(timeline: tuple[VirtualClock, History]) -> None:
    cachetools = pytest.importorskip("cachetools")
    clock, history = timeline
    cache = cachetools.TTLCache(maxsize=4, ttl=10, timer=clock.monotonic)
    with watch_cache(cache):
        cache["a"] = 1
        clock.advance(10)
        assert cache.get("a") is None
    assert events(history) == [("cache.load", "a", None), ("cache.evict", "a", "ttl"),
                               ("cache.miss", "a", None)]
    assert check_ttl(history, ttl=10).ok


class PlainLRU:
    """A user's LRU with get/put only: its keys live in its one mapping attribute."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self._data:
            return default
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)


def test_get_put_caches_and_a_cached_none(timeline: tuple[VirtualClock, History]) -> None:
    _, history = timeline
    cache = PlainLRU(2)
    with watch_cache(cache, name="plain") as same:
        assert same is cache
        cache.put("none", None)
        assert cache.get("none", "default") is None  # a stored None is a hit
        assert cache.get("missing", "default") == "default"
        cache.put("b", 2)
        cache.put("c", 3)
        cache.delete("b")
    assert events(history) == [
        ("cache.load", "none", None), ("cache.hit", "none", None),
        ("cache.miss", "missing", None), ("cache.load", "b", None), ("cache.load", "c", None),
        ("cache.evict", "none", "lru"), ("cache.evict", "b", "manual")]
    assert "get" not in vars(cache)


class ReadThrough:
    """A read-through cache: ``get`` loads on a miss."""

    def __init__(self) -> None:
        self.models: dict[str, str] = {}

    def get(self, name: str) -> str:
        if name not in self.models:
            self.models[name] = name.upper()
        return self.models[name]


def test_a_read_through_load_and_pressure_evictions(
        timeline: tuple[VirtualClock, History]) -> None:
    _, history = timeline
    cache = ReadThrough()
    with watch_cache(cache):
        cache.get("a")
        cache.get("a")
        emit(FAULT_FIRED, "memory_pressure", family="memory", action="pressure",
             trigger="set", call=0, percent=95.0)
        cache.models.clear()  # evicted by a path the observer does not watch
        cache.get("b")
    assert events(history) == [
        ("cache.miss", "a", None), ("cache.load", "a", None), ("cache.hit", "a", None),
        ("cache.evict", "a", "pressure"), ("cache.miss", "b", None), ("cache.load", "b", None)]
    assert check_eviction(history).ok


def test_what_cannot_be_watched_is_named() -> None:
    with pytest.raises(TypeError) as builtin:
        watch_cache({})
    assert str(builtin.value) == ("watch_cache({}): a builtin dict cannot be watched. Watch "
                                  "the cache object that holds it.")

    class Opaque:
        def get(self, key: str) -> None:
            return None

    with pytest.raises(TypeError) as opaque:
        watch_cache(Opaque())
    assert str(opaque.value) == (
        "watch_cache cannot see which keys a test_what_cannot_be_watched_is_named.<locals>."
        "Opaque holds: it has no keys() or __iter__ and 0 mapping attributes. Pass keys=, "
        "e.g. keys=lambda cache: cache._store.")
    with pytest.raises(ValueError) as ttl:
        watch_cache(PlainLRU(1), ttl=0)
    assert str(ttl.value) == "ttl=0 is not a time to live. Pass seconds > 0."
