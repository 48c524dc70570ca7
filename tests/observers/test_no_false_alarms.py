"""No false alarm: watch_cache on correct LRU and TTL caches, under any sequence of
operations and clock moves, never makes check_eviction or check_ttl fail."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pytest_resilience import History, VirtualClock, recording
from pytest_resilience.checks import check_eviction, check_ttl
from pytest_resilience.observe import watch_cache, watch_sleeps

TTL = 10.0
KEYS = st.sampled_from("abcde")
OPS = st.lists(st.one_of(
    st.tuples(st.just("put"), KEYS, st.integers(0, 9)),
    st.tuples(st.just("get"), KEYS, st.just(0)),
    st.tuples(st.just("delete"), KEYS, st.just(0)),
    st.tuples(st.just("advance"), st.just(""), st.sampled_from([0, 1, 3, 9, 10, 11])),
    st.tuples(st.just("skew"), st.just(""), st.sampled_from([-3600, 3600])),
), max_size=40)


class UserLRU:
    """A correct LRU written by a user (get/put/delete over an OrderedDict)."""

    def __init__(self, capacity: int = 3) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, int] = OrderedDict()

    def get(self, key: str) -> int | None:
        if key not in self._data:
            return None
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: str, value: int) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)


class UserTTL:
    """A correct TTL cache written by a user, on the monotonic clock, lazily expiring."""

    def __init__(self, ttl: float = TTL) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[int, float]] = {}

    def get(self, key: str) -> int | None:
        value, expires = self._entries.get(key, (None, 0.0))
        if time.monotonic() >= expires:
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: str, value: int) -> None:
        self._entries[key] = (value, time.monotonic() + self.ttl)

    def delete(self, key: str) -> None:
        self._entries.pop(key, None)


def _cachetools(kind: str) -> Callable[[VirtualClock], Any]:
    def make(clock: VirtualClock) -> Any:
        cachetools = pytest.importorskip("cachetools")
        if kind == "lru":
            return cachetools.LRUCache(maxsize=3)
        return cachetools.TTLCache(maxsize=3, ttl=TTL, timer=clock.monotonic)

    return make


CACHES: dict[str, Callable[[VirtualClock], Any]] = {
    "user-lru": lambda clock: UserLRU(),
    "user-ttl": lambda clock: UserTTL(),
    "cachetools-lru": _cachetools("lru"),
    "cachetools-ttl": _cachetools("ttl"),
}


def _apply(cache: Any, op: str, key: str, value: int, clock: VirtualClock) -> None:
    if op == "advance":
        clock.advance(value)
    elif op == "skew":
        clock.skew(value)  # the wall clock jumps; monotonic time is steady
    elif op == "put":
        if hasattr(cache, "put"):
            cache.put(key, value)
        else:
            cache[key] = value
    elif op == "get":
        cache.get(key)
    elif hasattr(cache, "delete"):
        cache.delete(key)
    else:
        cache.pop(key, None)


def _judge(make: Callable[[VirtualClock], Any], ops: list[tuple[str, str, int]],
           ttl: bool) -> None:
    clock = VirtualClock()
    cache = make(clock)
    with recording(History(clock=clock)) as history, watch_sleeps(clock), watch_cache(
            cache, removals=("delete", "pop")):
        for op, key, value in ops:
            _apply(cache, op, key, value, clock)
    eviction = check_eviction(history)
    assert eviction.ok, eviction.explanation
    if ttl:
        verdict = check_ttl(history, ttl=TTL)
        assert verdict.ok, verdict.explanation


@pytest.mark.parametrize("name", sorted(CACHES))
@settings(max_examples=150, deadline=None)
@given(ops=OPS)
def test_correct_caches_never_raise_a_false_alarm(name: str,
                                                   ops: list[tuple[str, str, int]]) -> None:
    _judge(CACHES[name], ops, ttl="ttl" in name)


class MostRecentLRU(UserLRU):
    def put(self, key: str, value: int) -> None:
        if key not in self._data and len(self._data) >= self.capacity:
            self._data.popitem()
        self._data[key] = value


class WallClockTTL(UserTTL):
    def get(self, key: str) -> int | None:
        value, expires = self._entries.get(key, (None, 0.0))
        return None if time.time() >= expires else value

    def put(self, key: str, value: int) -> None:
        self._entries[key] = (value, time.time() + self.ttl)


@pytest.mark.parametrize(("make", "ttl"), [(lambda clock: MostRecentLRU(), False),
                                           (lambda clock: WallClockTTL(), True)],
                         ids=["mru-evicting", "wall-clock-ttl"])
def test_the_same_property_finds_the_buggy_twins(make: Callable[[VirtualClock], Any],
                                                  ttl: bool) -> None:
    @settings(max_examples=300, deadline=None, derandomize=True, phases=[Phase.generate])
    @given(ops=OPS)
    def judged(ops: list[tuple[str, str, int]]) -> None:
        _judge(make, ops, ttl)

    with pytest.raises(AssertionError, match=r"VIOLATED|evicted|TTL"):
        judged()
