"""The network family can stall a connection for good (``timeout(ms=0)`` until the run
ends, as a dead upstream that keeps the socket open): a client without a timeout hangs
and the chaos deadline names it; a client with one passes (issue 16)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import find

from faults.families import network_toxics
from faults.network import FaultProxy
from faults.strategies import fault_plans


def test_a_plan_that_stalls_until_the_run_ends_is_generated(echo: Any) -> None:
    with FaultProxy(echo.address, name="db") as proxy:
        plan = find(fault_plans([network_toxics(proxy, kinds=["timeout"])], max_faults=1),
                    lambda p: any(s.params.get("ms") == 0 and "duration" not in s.params
                                  for s in p.scheduled))
    (entry,) = plan.scheduled
    assert (entry.kind, entry.params) == ("timeout", {"direction": "downstream", "ms": 0})


SUITE = '''
import socket, socketserver, threading
import pytest
from faults.families import network_toxics

{echo_through_proxy}


def ping(address, timeout):
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall(b"ping")
        conn.shutdown(socket.SHUT_WR)
        return conn.recv(64)


STALLS = [lambda proxy: network_toxics(proxy, kinds=["timeout"], max_ms=1)]


@pytest.mark.chaos(families=STALLS, max_faults=1, max_examples=30, horizon=2.0,
                   deadline=0.5)
def test_without_a_timeout(chaos, proxy):
    for _ in range(5):
        ping(proxy.address, None)
        chaos.clock.sleep(0.5)


@pytest.mark.chaos(families=STALLS, max_faults=1, max_examples=30, horizon=2.0,
                   deadline=0.5)
def test_with_a_timeout(chaos, proxy):
    for _ in range(5):
        try:
            ping(proxy.address, 0.05)
        except (TimeoutError, ConnectionError):
            pass  # the caller's fallback
        chaos.clock.sleep(0.5)
'''


def test_the_chaos_deadline_catches_a_client_without_a_timeout(
        pytester: pytest.Pytester, echo_through_proxy: str) -> None:
    pytester.makepyfile(textwrap.dedent(SUITE).replace("{echo_through_proxy}",
                                                       echo_through_proxy))
    result = pytester.runpytest("-p", "resilience", "--resilience-seed=3")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*the body raised HangDetected: A chaos plan's body was blocked for more than its "
        "0.5s deadline*",
        "*toxic*timeout(ms=0)*",
    ])
    assert "test_with_a_timeout" not in "".join(
        line for line in result.outlines if line.startswith("FAILED"))
