"""A proxy on a ``VirtualClock`` is driven by the test's thread: time moves only when
the test moves it or waits on a socket, and the same test gives the same history."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from faults import network
from faults.network import FaultProxy
from pytest_resilience import History, VirtualClock, emit


def test_the_proxy_never_moves_the_clock_while_the_test_runs(echo: Any) -> None:
    clock = VirtualClock()
    with FaultProxy(echo.address, clock=clock) as proxy:
        proxy.add_toxic(network.latency(30))
        with socket.create_connection(proxy.address, timeout=10) as sock:
            sock.sendall(b"x")
            for _ in range(300):  # busy on the test's thread: the proxy must not jump
                assert clock.monotonic() == 0.0
            sock.setblocking(False)  # (with a timeout, recv polls first: that blocks)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
            sock.settimeout(10)
            assert sock.recv(1) == b"x"  # blocked on the proxy: now time moves
            assert clock.monotonic() == pytest.approx(0.030)


def test_a_sleep_stops_at_each_proxy_deadline_inside_it(echo: Any) -> None:
    """A timer the test does not wait for fires at its own time, before the test's next
    event, although the test slept past it in one step."""
    clock = VirtualClock()
    history = History()
    with FaultProxy(echo.address, name="db", clock=clock, history=history) as proxy:
        proxy.add_toxic(network.timeout(400))
        with socket.create_connection(proxy.address, timeout=10) as sock:
            clock.sleep(1.0)
            emit("test.after_sleep", "body", clock, history=history)
            assert sock.recv(10) == b""
    closes = [(e.kind, e.attrs.get("outcome"), e.time) for e in history
              if e.attrs.get("event") == "close" or e.kind == "test.after_sleep"]
    assert closes == [("proxy.connection", "timeout", pytest.approx(0.4)),
                      ("test.after_sleep", None, 1.0)]


def test_an_asyncio_client_waits_in_virtual_time(echo: Any) -> None:
    clock = VirtualClock()

    async def main(proxy: FaultProxy) -> float:
        reader, writer = await asyncio.open_connection(*proxy.address)
        start = clock.monotonic()
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), timeout=10) == b"ping"
        took = clock.monotonic() - start
        writer.close()
        await writer.wait_closed()
        return took

    with FaultProxy(echo.address, clock=clock) as proxy:
        proxy.add_toxic(network.latency(120))
        assert asyncio.run(main(proxy)) == pytest.approx(0.120)


def test_two_proxies_on_one_clock_chain_their_delays(echo: Any) -> None:
    clock = VirtualClock()
    with FaultProxy(echo.address, name="inner", clock=clock) as inner, \
            FaultProxy(inner.address, name="outer", clock=clock) as outer:
        inner.add_toxic(network.latency(20))
        outer.add_toxic(network.latency(10), direction="upstream")
        with socket.create_connection(outer.address, timeout=10) as sock:
            sock.sendall(b"ab")
            assert sock.recv(2) == b"ab"
        assert clock.monotonic() == pytest.approx(0.030)


def scenario(echo: Any) -> str:
    """Latency, reset_peer after N ms and slow_close on fresh clocks: the history."""
    clock = VirtualClock()
    history = History()
    with FaultProxy(echo.address, name="db", clock=clock) as proxy:
        proxy.history = history  # after the listen event, which names the port
        proxy.add_toxic(network.latency(40, jitter_ms=10))
        proxy.add_toxic(network.slow_close(70))
        for _ in range(3):
            with socket.create_connection(proxy.address, timeout=10) as sock:
                sock.sendall(b"ping")
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(64):
                    pass
            emit("test.echo", "body", clock, history=history)
            clock.sleep(0.05)
        with proxy.add_toxic(network.reset_peer(25)), \
                socket.create_connection(proxy.address, timeout=10) as sock:
            sock.sendall(b"ping")
            with pytest.raises(ConnectionResetError):
                sock.recv(64)
        emit("test.reset", "body", clock, history=history)
    return history.to_jsonl()


def test_the_same_test_gives_the_same_history_byte_for_byte(echo: Any) -> None:
    first = scenario(echo)
    assert '"outcome": "reset_peer"' in first
    assert [scenario(echo) for _ in range(3)] == [first] * 3


def test_a_proxy_left_on_a_clock_after_stop_leaves_no_driver(echo: Any) -> None:
    clock = VirtualClock()
    with FaultProxy(echo.address, clock=clock):
        assert clock.driver_deadline == float("inf")
    clock.sleep(1.0)  # no proxy left to settle
    assert clock.monotonic() == 1.0
