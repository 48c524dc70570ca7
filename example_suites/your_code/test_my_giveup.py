"""A retry loop that runs out of attempts raises the last error."""

from __future__ import annotations

import contextlib

import pytest
from my_backoff import Upstream
from my_giveup import fetch_or_none, fetch_or_raise
from twins import twins

from pytest_resilience.checks import check_retry
from pytest_resilience.observe import watch_calls, watch_sleeps


@pytest.mark.parametrize("fetch", twins(fetch_or_raise, fetch_or_none, "swallows the error"))
def test_gives_up_loudly(fetch, clock, history):  # type: ignore[no-untyped-def]
    upstream = Upstream(failures=99)
    with watch_sleeps(clock), watch_calls(upstream, "get"), watch_calls(fetch) as watched, \
            contextlib.suppress(ConnectionError):
        watched(upstream.get)
    check_retry(history, attempts=3).assert_ok()
