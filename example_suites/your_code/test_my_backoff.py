"""A retry loop backs off exponentially; its sleeps cost no real time."""

from __future__ import annotations

import pytest
from my_backoff import Upstream, fetch_hammering, fetch_with_backoff
from twins import twins

from pytest_resilience import Backoff
from pytest_resilience.checks import check_retry
from pytest_resilience.observe import watch_calls, watch_sleeps


@pytest.mark.parametrize("fetch", twins(fetch_with_backoff, fetch_hammering, "no backoff"))
def test_retries_back_off(fetch, clock, history):  # type: ignore[no-untyped-def]
    upstream = Upstream(failures=3)
    with watch_sleeps(clock), watch_calls(upstream, "get"):
        assert fetch(upstream.get) == "data"
    check_retry(history, attempts=4, backoff=Backoff.exponential(), jitter="none").assert_ok()
