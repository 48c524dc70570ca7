"""An upstream that refuses is refused again by the proxy; proxies leave no thread, socket
or descriptor behind."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import threading
import urllib.request
from typing import Any

import psutil
import pytest

from faults import network
from faults.network import FaultProxy
from pytest_resilience import History, VirtualClock


def refused_then(address: tuple[str, int]) -> str:
    try:
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(b"ping")
            data = sock.recv(10)
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    return "closed" if not data else data.decode()


def test_a_proxy_to_a_closed_port_resets_once_then_refuses_like_it(closed_port: int) -> None:
    history = History()
    with FaultProxy(("127.0.0.1", closed_port), name="db", clock=VirtualClock(),
                    history=history) as proxy:
        outcomes = [refused_then(proxy.address) for _ in range(3)]
        assert proxy.refusing
        assert proxy.stats().refused == 1
    assert outcomes == ["reset", "refused", "refused"]
    upstream = [(e.attrs["state"], e.attrs["error"]) for e in history.select("proxy.upstream")]
    assert upstream == [("refused", "ECONNREFUSED: Connection refused")]
    close = [e.attrs for e in history.select("proxy.connection") if e.attrs["event"] == "close"]
    assert [(c["outcome"], c["error"]) for c in close] == [
        ("upstream_refused", "ECONNREFUSED: Connection refused")]


def test_when_the_upstream_comes_back_the_proxy_listens_again(closed_port: int,
                                                             start_echo: Any) -> None:
    clock = VirtualClock()
    history = History()
    with FaultProxy(("127.0.0.1", closed_port), name="db", clock=clock,
                    history=history) as proxy:
        assert refused_then(proxy.address) == "reset"
        start_echo(closed_port)
        clock.sleep(0.1)  # any read or step of the clock probes the upstream
        assert not proxy.refusing
        assert refused_then(proxy.address) == "ping"
    assert [e.attrs["state"] for e in history.select("proxy.upstream")] == [
        "refused", "reachable"]


def test_a_failing_test_shows_what_its_proxy_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        def test_service(fault_proxy):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            proxy = fault_proxy(("127.0.0.1", port), name="db")
            with socket.create_connection(proxy.address, timeout=5) as sock:
                sock.recv(1)
        """
    )
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*resilience: proxies*",
        "proxy 'db': the upstream 127.0.0.1:* refused 1 connection(s). The first client "
        "after it went away got a reset (TCP cannot refuse a connection already accepted), "
        "the later ones a refusal; see the proxy.upstream events.",
    ])


def leak_state(port: int) -> tuple[set[int | None], int, list[Any]]:
    """The proxies' threads, the process's descriptors, the port's TCP connections."""
    process = psutil.Process()
    conns = [c for c in process.net_connections("tcp")
             if port in (c.laddr[1], c.raddr[1] if c.raddr else 0)
             and c.status != psutil.CONN_TIME_WAIT]
    proxies = {t.ident for t in threading.enumerate() if t.name.startswith("FaultProxy")}
    return proxies, process.num_fds(), conns


@pytest.mark.parametrize("clock", [None, VirtualClock()], ids=["real", "virtual"])
def test_stop_leaves_no_thread_descriptor_or_socket(upstream_process: Any, clock: Any) -> None:
    echo = upstream_process("EchoServer")
    threads, fds, _ = leak_state(0)
    proxy = FaultProxy(echo, name="leak", clock=clock).start()
    port = proxy.port
    socks = [socket.create_connection(proxy.address, timeout=5) for _ in range(5)]
    socks[0].sendall(b"x" * 100_000)
    socks[1].sendall(b"y")
    assert socks[1].recv(1) == b"y"
    proxy.add_toxic(network.latency(500), name="slow")
    proxy.add_toxic(network.timeout(0), direction="upstream")
    with network.down(proxy):
        pass
    socks.append(socket.create_connection(proxy.address, timeout=5))
    proxy.stop()
    for sock in socks:
        sock.close()
    after_threads, after_fds, open_conns = leak_state(port)
    assert after_threads == threads
    assert after_fds == fds
    assert open_conns == []
    proxy.stop()  # idempotent


@pytest.mark.skipif(importlib.util.find_spec("h11") is None, reason="h11 is not installed")
def test_the_http_proxy_leaves_nothing_behind_either(upstream_process: Any) -> None:
    from faults import http as fh

    model = upstream_process("ModelServer")
    threads, fds, _ = leak_state(0)
    proxy = fh.HttpFaultProxy(model, clock=VirtualClock()).start()
    port = proxy.port
    proxy.add_fault(fh.delay(100), path="/slow")
    with urllib.request.urlopen(f"{proxy.url}/ok", timeout=5) as response:
        assert response.status == 200
    pending = socket.create_connection(proxy.address, timeout=5)
    pending.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    proxy.stop()
    with contextlib.suppress(OSError):
        pending.recv(10)
    pending.close()
    after_threads, after_fds, open_conns = leak_state(port)
    assert (after_threads, after_fds, open_conns) == (threads, fds, [])


def test_stress_300_concurrent_connections_with_a_toxic_lose_no_byte(echo: Any) -> None:
    import asyncio

    async def client(proxy: FaultProxy, i: int) -> bool:
        payload = (i.to_bytes(2, "big") + bytes(range(256))) * 64
        reader, writer = await asyncio.open_connection(*proxy.address)
        writer.write(payload)
        writer.write_eof()
        data = await reader.read(-1)
        writer.close()
        await writer.wait_closed()
        return data == payload

    async def main(proxy: FaultProxy) -> list[bool]:
        return await asyncio.wait_for(
            asyncio.gather(*(client(proxy, i) for i in range(300))), 30)

    with FaultProxy(echo.address) as proxy:
        proxy.add_toxic(network.slicer(700, 0.0, size_variation=300))
        assert all(asyncio.run(main(proxy)))
        assert proxy.stats().bytes_down == 300 * 258 * 64
