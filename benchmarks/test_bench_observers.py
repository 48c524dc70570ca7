"""What observing plain code costs per call, beside the stdlib peer that records calls
(``unittest.mock.patch.object(..., wraps=...)``) and beside the unobserved call.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_observers.py --benchmark-only``.
Each event is written into an active history, as in a test.
"""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest

from pytest_resilience import History, VirtualClock, recording
from pytest_resilience.observe import watch_cache, watch_calls, watch_sleeps


class Upstream:
    def get(self, key: str) -> str:
        return key


@pytest.mark.benchmark(group="observe-call")
def test_unobserved_call(benchmark: Any) -> None:
    upstream = Upstream()
    assert benchmark(upstream.get, "k") == "k"


@pytest.mark.benchmark(group="observe-call")
def test_ours_watch_calls(benchmark: Any) -> None:
    upstream = Upstream()
    with recording(History(clock=VirtualClock())), watch_calls(upstream, "get"):
        assert benchmark(upstream.get, "k") == "k"


@pytest.mark.benchmark(group="observe-call")
def test_mock_wraps(benchmark: Any) -> None:
    upstream = Upstream()
    with mock.patch.object(upstream, "get", wraps=upstream.get):
        assert benchmark(upstream.get, "k") == "k"


@pytest.mark.benchmark(group="observe-cache-hit")
def test_cachetools_hit_unobserved(benchmark: Any) -> None:
    cachetools = pytest.importorskip("cachetools")
    cache = cachetools.LRUCache(maxsize=64)
    cache.update({f"k{i}": i for i in range(64)})
    assert benchmark(cache.get, "k1") == 1


@pytest.mark.benchmark(group="observe-cache-hit")
def test_ours_watch_cache_hit(benchmark: Any) -> None:
    cachetools = pytest.importorskip("cachetools")
    cache = cachetools.LRUCache(maxsize=64)
    cache.update({f"k{i}": i for i in range(64)})
    with recording(History(clock=VirtualClock())), watch_cache(cache):
        assert benchmark(cache.get, "k1") == 1


def nap() -> None:
    """User code that sleeps (the benchmark's own frames keep real time)."""
    time.sleep(0.5)


@pytest.mark.benchmark(group="observe-sleep")
def test_ours_watch_sleeps_virtual_sleep(benchmark: Any) -> None:
    clock = VirtualClock()
    with recording(History(clock=clock)), watch_sleeps(clock):
        benchmark(nap)
    assert clock.monotonic() > 0


@pytest.mark.benchmark(group="observe-sleep")
def test_mock_patched_sleep(benchmark: Any) -> None:
    with mock.patch("time.sleep") as sleep:
        benchmark(nap)
    assert sleep.called
