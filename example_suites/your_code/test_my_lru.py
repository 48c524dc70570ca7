"""An LRU cache evicts the least recently used entry."""

from __future__ import annotations

import pytest
from my_lru import LRUCache, MostRecentLRUCache
from twins import twins

from pytest_resilience.checks import check_eviction
from pytest_resilience.observe import watch_cache


@pytest.mark.parametrize("cache_cls", twins(LRUCache, MostRecentLRUCache, "evicts the MRU"))
def test_evicts_the_least_recently_used(cache_cls, history):  # type: ignore[no-untyped-def]
    cache = cache_cls(capacity=2)
    with watch_cache(cache):
        cache.put("a", 1)
        cache.put("b", 2)
        cache.get("a")
        cache.put("c", 3)
    check_eviction(history).assert_ok()
