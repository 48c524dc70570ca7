"""ModelCache: verify probe, async path, per-entry TTL, eviction hooks, threads, errors."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Hashable
from typing import Any

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import recording
from pytest_resilience.memory import ModelCache, ModelLoadError
from pytest_resilience.memory._cache import RELEASE_MIN_BYTES


def _reject_b(key: Hashable, value: Any) -> bool:
    return key != "b"


def test_verify_rejects_false_loaded_and_caches_nothing() -> None:
    cache = ModelCache(clock=VirtualClock(), loader=lambda k: b"x" * 4, verify=_reject_b,
                       name="m")
    assert cache.get("a") == b"xxxx"
    with recording() as history, pytest.raises(ModelLoadError) as info:
        cache.get("b")
    assert str(info.value).startswith(
        "model 'b' failed its load verification probe; it was not cached.")
    assert "b" not in cache
    assert (cache.keys(), cache.tracked_bytes()) == (["a"], 4)
    assert history.select("cache.load") == []
    assert info.value.recoverable
    with pytest.raises(ModelLoadError):
        cache.put("b", b"y")
    assert cache.keys() == ["a"]


def test_aget_async_loader_same_semantics() -> None:
    clock = VirtualClock()
    loads: list[Hashable] = []

    async def load(key: Hashable) -> bytes:
        loads.append(key)
        await asyncio.sleep(0)
        return b"v" * 10

    cache = ModelCache(clock=clock, ttl=5.0, verify=_reject_b)

    async def scenario() -> None:
        assert await cache.aget("a", load) == b"v" * 10
        assert await cache.aget("a", load) == b"v" * 10  # hit, no second load
        with pytest.raises(ModelLoadError):
            await cache.aget("b", load)
        assert await cache.aget("s", lambda k: b"sync") == b"sync"  # sync loader accepted
        clock.advance(5.0)
        assert await cache.aget("a", load) == b"v" * 10  # expired: loaded again

    asyncio.run(scenario())
    assert loads == ["a", "b", "a"]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 4, 2)
    assert stats.evictions == {"ttl": 1}  # "s" expired too, but nothing looked it up


def test_get_with_async_loader_is_a_type_error() -> None:
    async def load(key: Hashable) -> bytes:
        return b""

    cache = ModelCache(clock=VirtualClock())
    with pytest.raises(TypeError) as info:
        cache.get("k", load)
    assert str(info.value) == ("loader for key='k' returned an awaitable. Use "
                               "`await cache.aget(...)` with async loaders.")
    assert "k" not in cache


def test_per_entry_ttl_overrides_default() -> None:
    clock = VirtualClock()
    cache = ModelCache(clock=clock, ttl=100.0, loader=lambda k: b"")
    cache.get("short", ttl=1.0)
    cache.put("long", b"", ttl=1000.0)
    cache.get("default")
    clock.advance(1.0)
    assert "short" not in cache
    assert "default" in cache
    clock.advance(99.0)
    assert cache.expire() == 2  # short and default
    assert cache.keys() == ["long"]
    clock.advance(900.0)
    assert "long" not in cache
    with pytest.raises(ValueError, match=r"^ttl=-1 is not a valid lifetime\."):
        cache.put("bad", b"", ttl=-1)
    assert "bad" not in cache


def test_on_evict_called_with_each_cause() -> None:
    clock = VirtualClock()
    evicted: list[tuple[Hashable, Any]] = []
    cache = ModelCache(clock=clock, capacity_bytes=300, ttl=10.0,
                       on_evict=lambda k, v: evicted.append((k, v)))
    with recording() as history:
        for key in "abc":
            cache.put(key, key.upper(), size=100)
        cache.put("d", "D", size=100)  # over capacity: "a" out as lru
        cache.put("b", "B2", size=100)  # replacing: old "b" out as manual
        cache.evict_bytes(50, cause="pressure")  # "c"
        cache.evict_lru(cause="gpu")  # "d"
        clock.advance(10.0)
        cache.expire()  # "b"
    assert evicted == [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D"), ("b", "B2")]
    assert [e.attrs["cause"] for e in history.select("cache.evict")] == [
        "lru", "manual", "pressure", "gpu", "ttl"]
    assert cache.stats().evictions == {"lru": 1, "manual": 1, "pressure": 1, "gpu": 1,
                                       "ttl": 1}
    assert (len(cache), cache.tracked_bytes()) == (0, 0)


def test_eight_threads_keep_byte_accounting_exact() -> None:
    calls = itertools.count()  # one step each: safe across threads

    def loader(key: object) -> bytes:
        next(calls)
        return b""

    cache = ModelCache(clock=VirtualClock(), capacity_bytes=1000, loader=loader)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def hammer(worker: int) -> None:
        try:
            start.wait(10.0)
            for i in range(60):
                key = (worker + i) % 23
                if i % 3:
                    cache.get(key, size=10 + key * 7)
                else:
                    cache.put(key, b"", size=10 + key * 7)
                if i % 40 == 0:
                    cache.evict_bytes(100, cause="pressure")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    stats = cache.stats()
    keys = cache.keys()
    assert cache.tracked_bytes() == sum(10 + int(str(k)) * 7 for k in keys)
    assert stats.bytes == cache.tracked_bytes() <= 1000
    assert stats.entries == len(keys)
    assert stats.hits + stats.misses == 8 * 40
    # Misses on one key at once wait for a single load (each still counts as a miss), and
    # a load whose key was put meanwhile keeps the put value: so loads are bounded, not
    # equal to misses + puts (that equality failed 1 run in many, under load).
    loader_calls = next(calls)
    assert loader_calls <= stats.misses
    assert 8 * 20 <= stats.loads <= loader_calls + 8 * 20
    assert stats.loads - sum(stats.evictions.values()) == stats.entries


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity_bytes": 0}, "capacity_bytes=0 is not a positive integer. Pass a byte "
                                "count, or None for no capacity limit."),
        ({"capacity_bytes": 1.5}, "capacity_bytes=1.5 is not a positive integer. Pass a byte "
                                  "count, or None for no capacity limit."),
        ({"ttl": float("inf")}, "ttl=inf is not a valid lifetime. Pass finite seconds > 0; "
                                "every entry has a TTL (default 600)."),
        ({"ttl": "30"}, "ttl='30' is not a valid lifetime. Pass finite seconds > 0; "
                        "every entry has a TTL (default 600)."),
        ({"clock": "virtual"}, "clock='virtual' is not a clock. Pass an object with "
                               "monotonic(), time(), sleep() and asleep() (a VirtualClock or "
                               "SystemClock instance), or None."),
        ({"on_evict": 5}, "on_evict=5 is not callable. Pass a function of (key, value, cause), "
                          "or None."),
    ],
)
def test_bad_construction_messages(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        ModelCache(**kwargs)
    assert str(info.value) == message


def test_bad_entry_arguments_are_rejected_before_loading() -> None:
    loads: list[Hashable] = []
    cache = ModelCache(clock=VirtualClock(), loader=lambda k: loads.append(k) or b"")
    with pytest.raises(ValueError) as size:
        cache.get("k", size=-5)
    assert str(size.value) == (
        "size=-5 is not a byte count. Pass an int >= 0, or None to measure the value.")
    with pytest.raises(ValueError, match=r"^ttl=0 is not a valid lifetime\."):
        cache.get("k", ttl=0)
    with pytest.raises(TypeError, match=r"^size=True is not a byte count\."):
        asyncio.run(cache.aget("k", size=True))
    with pytest.raises(TypeError, match=r"^size=1\.5 is not a byte count\."):
        cache.put("k", b"", size=1.5)  # type: ignore[arg-type]
    assert loads == []
    assert (len(cache), cache.tracked_bytes()) == (0, 0)


def test_bad_call_messages() -> None:
    cache = ModelCache(clock=VirtualClock())
    with pytest.raises(TypeError) as no_loader:
        cache.get("k")
    assert str(no_loader.value) == (
        "No loader: pass loader= to get() or to ModelCache(loader=...).")
    with pytest.raises(ValueError) as bad_cause:
        cache.evict("k", cause="oops")
    assert str(bad_cause.value) == (
        "cause='oops' is not an eviction cause. Pass one of "
        "('lru', 'ttl', 'pressure', 'gpu', 'manual').")
    assert cache.stats().misses == 1


def test_gc_pass_runs_only_once_evictions_free_a_mebibyte(
        monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[str] = []
    monkeypatch.setattr("pytest_resilience.memory._cache.release_memory",
                        lambda: passes.append("gc"))
    cache = ModelCache(clock=VirtualClock(), loader=lambda k: b"")
    for key, size in (("small", 1000), ("big", RELEASE_MIN_BYTES), ("a", 600_000),
                      ("b", 600_000), ("c", 10)):
        cache.get(key, size=size)
    cache.evict("small")
    assert passes == []  # a kilobyte goes with its last reference
    cache.evict("big")
    assert passes == ["gc"]
    assert cache.evict_bytes(700_000) == 1_200_000  # a and b together: one pass
    assert passes == ["gc", "gc"]
    cache.clear()
    assert passes == ["gc", "gc"]


def test_a_slow_load_blocks_neither_hits_on_other_keys_nor_loads_twice() -> None:
    cache = ModelCache(clock=VirtualClock())
    cache.put("ready", b"r")
    entered, release = threading.Event(), threading.Event()
    loads: list[object] = []

    def slow(key: object) -> bytes:
        loads.append(key)
        entered.set()
        assert release.wait(10.0)
        return b"slow"

    results: list[object] = []
    loaders = [threading.Thread(target=lambda: results.append(cache.get("slow", slow)))
               for _ in range(3)]
    loaders[0].start()
    assert entered.wait(10.0)
    for thread in loaders[1:]:
        thread.start()
    hit = threading.Thread(target=lambda: results.append(cache.get("ready")))
    hit.start()
    hit.join(10.0)
    assert not hit.is_alive()  # answered while "slow" is still loading
    assert results == [b"r"]
    release.set()
    for thread in loaders:
        thread.join(10.0)
    assert results == [b"r", b"slow", b"slow", b"slow"]
    assert loads == ["slow"]
    assert cache.stats().loads == 2


def test_a_failed_load_lets_the_next_caller_load() -> None:
    cache = ModelCache(clock=VirtualClock())

    def broken(key: object) -> bytes:
        raise OSError("weights missing")

    with pytest.raises(OSError, match="weights missing"):
        cache.get("m", broken)
    assert cache.get("m", lambda k: b"ok") == b"ok"
    assert cache.stats().misses == 2


def test_a_loader_asking_for_its_own_key_is_refused() -> None:
    cache = ModelCache(clock=VirtualClock())

    def recursive(key: object) -> object:
        return cache.get(key, recursive)

    with pytest.raises(RuntimeError) as info:
        cache.get("m", recursive)
    assert str(info.value) == ("loader for key='m' asked the cache for 'm' itself. A loader "
                               "must not depend on its own key.")
    assert cache.get("m", lambda k: b"x") == b"x"  # nothing left half-loaded


def test_an_entry_that_expired_during_a_load_is_replaced_not_counted_twice() -> None:
    clock = VirtualClock()
    cache = ModelCache(clock=clock)

    async def reload(key: object) -> bytes:
        cache.put(key, b"old", size=100, ttl=1.0)  # stored meanwhile, then expires
        clock.advance(2.0)
        return b"new"

    assert asyncio.run(cache.aget("m", reload, size=40)) == b"new"
    assert (cache.get("m"), cache.tracked_bytes()) == (b"new", 40)
    assert cache.stats().evictions == {"ttl": 1}
