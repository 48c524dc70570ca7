"""FaultProxy costs: throughput with no toxic vs a direct loopback connection, and the
accuracy of the latency toxic at 50 ms.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_proxy.py --benchmark-only``.
Targets: proxied throughput >= 50% of direct; latency toxic within ±2 ms of 50 ms
(``extra_info["latency_error_ms"]``). Toxiproxy itself cannot be installed from any
registry reachable here (no PyPI/npm/apt package for the server), so it has no column.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from faults import network
from faults.network import FaultProxy

PAYLOAD = bytes(range(256)) * 4096 * 16  # 16 MiB streamed per round


SINK = """
import socket, sys
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        total = 0
        while data := conn.recv(1 << 18):
            if data == b"x" and total == 0:
                conn.sendall(data)
                continue
            total += len(data)
        if total:
            conn.sendall(total.to_bytes(8, "big"))
"""


class Sink:
    """Upstream in its own process (so it does not share our GIL with the proxy).

    One connection at a time, like the clients. A one-byte message is echoed (ping);
    anything longer is read to EOF and answered with the byte count (throughput).
    """

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SINK],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.address = ("127.0.0.1", int(self.process.stdout.readline()))

    def close(self) -> None:
        self.process.kill()
        self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.close()


def stream(address: tuple[str, int]) -> None:
    """Stream 16 MiB to the sink and wait for its byte count."""
    with open_client(address) as sock:
        sock.sendall(PAYLOAD)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(8):
            answer += chunk
    assert int.from_bytes(answer, "big") == len(PAYLOAD)


def open_client(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@pytest.mark.benchmark(group="proxy-throughput")
def test_direct_loopback(benchmark: pytest.FixtureRequest, sink: Sink) -> None:
    benchmark(stream, sink.address)


@pytest.mark.benchmark(group="proxy-throughput")
def test_through_fault_proxy(benchmark: pytest.FixtureRequest, sink: Sink) -> None:
    with FaultProxy(sink.address) as proxy:
        benchmark(stream, proxy.address)


def ping(sock: socket.socket) -> float:
    start = time.perf_counter()
    sock.sendall(b"x")
    sock.recv(1)
    return time.perf_counter() - start


@pytest.mark.benchmark(group="proxy-latency")
def test_latency_toxic_accuracy_at_50ms(benchmark: pytest.FixtureRequest, sink: Sink) -> None:
    with FaultProxy(sink.address) as proxy, open_client(proxy.address) as sock:
        baseline = statistics.median(ping(sock) for _ in range(50))
        samples: list[float] = []
        with proxy.add_toxic(network.latency(50)):
            benchmark.pedantic(lambda: samples.append(ping(sock)), rounds=20, iterations=1)
    added_ms = (statistics.median(samples) - baseline) * 1000
    benchmark.extra_info["latency_added_ms"] = round(added_ms, 3)
    benchmark.extra_info["latency_error_ms"] = round(added_ms - 50, 3)
    assert abs(added_ms - 50) <= 2, f"latency toxic added {added_ms:.2f} ms, wanted 50±2"
