"""A TTL cache keeps entries exactly their TTL when the wall clock jumps, and when
monotonic time jumps with the wall clock steady."""

from __future__ import annotations

import pytest
from my_ttl_cache import TTLCache, WallClockTTLCache
from twins import twins

from pytest_resilience.checks import check_ttl
from pytest_resilience.observe import watch_cache, watch_sleeps


@pytest.mark.parametrize("cache_cls", twins(TTLCache, WallClockTTLCache, "wall-clock TTL"))
@pytest.mark.parametrize(("wall", "monotonic"), [(3600, 0), (0, 61)], ids=["wall", "monotonic"])
def test_entries_live_exactly_their_ttl(cache_cls, wall, monotonic, clock, history):  # type: ignore[no-untyped-def]
    cache = cache_cls(ttl=60)
    with watch_sleeps(clock), watch_cache(cache):
        cache.put("embedder", "v1")
        clock.advance(monotonic)
        clock.skew(wall - monotonic)  # wall time moves by `wall` seconds in all
        cache.get("embedder")
    check_ttl(history, ttl=60).assert_ok()
