"""A model cache answers memory pressure by evicting its least recently used models."""

from __future__ import annotations

import pytest
from my_model_cache import GreedyModelCache, ModelCache
from twins import twins

from pytest_resilience.checks import check_eviction
from pytest_resilience.observe import watch_cache


@pytest.mark.parametrize("cache_cls", twins(ModelCache, GreedyModelCache, "ignores pressure"))
def test_memory_pressure_evicts_models(cache_cls, memory_pressure, history):  # type: ignore[no-untyped-def]
    cache = cache_cls(load=lambda name: bytearray(1_000_000))
    with watch_cache(cache):
        cache.get("small")
        cache.get("base")
        memory_pressure(95)  # psutil now reports 95% of memory used
        cache.get("large")
    check_eviction(history, pressure_level="critical").assert_ok()
