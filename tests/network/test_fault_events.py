"""A toxic (and ``down``) is a fault like any other: ``fault.armed`` when added,
``fault.fired`` per connection that feels it, ``fault.disarmed`` when removed, all with
``family="network"``, so the history knows which faults were active when."""

from __future__ import annotations

import socket
from typing import Any

from faults import network
from faults.network import FaultProxy
from pytest_resilience import History, VirtualClock


def test_a_toxic_and_down_are_armed_fired_and_disarmed(echo: Any) -> None:
    clock = VirtualClock()
    history = History(clock=clock)
    with FaultProxy(echo.address, name="db", clock=clock, history=history) as proxy:
        with proxy.add_toxic(network.latency(20), name="slow"):
            assert history.faults_active() == ["db"]
            with socket.create_connection(proxy.address, timeout=10) as sock:
                sock.sendall(b"ping")
                assert sock.recv(4) == b"ping"
        assert history.faults_active() == []
        with network.down(proxy):
            assert history.faults_active() == ["db"]
        assert history.faults_active() == []
    faults = [(e.kind, e.attrs["family"], e.attrs["fault"], e.time)
              for e in history.select("fault.")]
    assert faults == [
        ("fault.armed", "network", "slow", 0.0),
        ("fault.fired", "network", "slow", 0.0),  # the connection feels it
        ("fault.disarmed", "network", "slow", 0.02),
        ("fault.armed", "network", "down", 0.02),
        ("fault.fired", "network", "down", 0.02),
        ("fault.disarmed", "network", "down", 0.02),
    ]
    assert history.armed_count() == 2
