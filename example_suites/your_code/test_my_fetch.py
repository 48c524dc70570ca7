"""An HTTP fetch fails fast against an upstream that accepts and never answers; the one
that hangs is failed within the test's limit, naming the toxic that stalled it."""

from __future__ import annotations

import pytest
from _support.loopback import JSONHandler, LoopbackServer
from my_fetch import fetch, fetch_forever
from twins import twins

from faults.network import timeout


@pytest.fixture
def stalled_url(fault_proxy, history):  # type: ignore[no-untyped-def]
    with LoopbackServer(JSONHandler) as server:
        proxy = fault_proxy(server.address, name="upstream")
        proxy.add_toxic(timeout(0), name="stall")  # holds the connection, no data back
        yield proxy.url


@pytest.mark.timeout(1)
@pytest.mark.parametrize("get", twins(fetch, fetch_forever, "hangs", raises=pytest.fail.Exception))
def test_a_stalled_upstream_fails_fast(get, stalled_url):  # type: ignore[no-untyped-def]
    with pytest.raises(TimeoutError):
        get(stalled_url, timeout=0.2)
