"""FaultProxy costs: throughput with no toxic vs a direct loopback connection, and the
accuracy of the latency toxic at 50 ms.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_proxy.py --benchmark-only``.
Targets: proxied throughput >= 50% of direct (``extra_info["proxied_over_direct"]``);
latency toxic within ±2 ms of 50 ms (``extra_info["latency_error_ms"]``). Toxiproxy
itself cannot be installed from any registry reachable here (no PyPI/npm/apt package for
the server), so it has no column.

Fairness: the upstream sink runs in its own process, and the same client streams the same
64 MiB over a fresh connection in every round, direct or proxied. The client runs either
in this process (``thread``: it shares the GIL with the proxy's thread, as a test's client
does) or in a process of its own (``process``: only the proxy's own cost is measured).
The proxied benchmark also times a direct transfer before each round (not counted in
its table) and reports the ratio of the medians, so load on the machine hits both alike.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from faults import network
from faults.network import FaultProxy

MIB = 64  # streamed per round
ROUNDS = 15
Address = tuple[str, int]


def stream(address: Address, payload: bytes) -> None:
    """Send ``payload`` on a fresh connection and check the sink's byte count."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(8):
            answer += chunk
    assert int.from_bytes(answer, "big") == len(payload)


def serve_sink() -> None:
    """The upstream: a one-byte message is echoed (ping); anything longer is read to EOF
    and answered with the byte count (throughput). One connection at a time."""
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


def serve_client() -> None:
    """The client in a process of its own: one ``stream`` per address read on stdin."""
    payload = bytes(range(256)) * 4096 * MIB
    for line in sys.stdin:
        host, port = line.split()
        stream((host, int(port)), payload)
        print("ok", flush=True)


class Process:
    """This file run as ``role`` (sink or client) in a process of its own."""

    def __init__(self, role: str) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, role], text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout

    def close(self) -> None:
        self.process.kill()
        self.process.wait(5)
        self.stdin.close()
        self.stdout.close()


class Sink(Process):
    """The upstream in its own process, so that it does not share our GIL."""

    def __init__(self) -> None:
        super().__init__("sink")
        self.address = ("127.0.0.1", int(self.stdout.readline()))


class Client:
    """Streams ``MIB`` MiB to an address, from this process or from a process of its own."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.payload = bytes(range(256)) * 4096 * MIB
        self.process = Process("client") if where == "process" else None

    def __call__(self, address: Address) -> None:
        if self.process is None:
            stream(address, self.payload)
            return
        self.process.stdin.write(f"{address[0]} {address[1]}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "ok\n"

    def close(self) -> None:
        if self.process is not None:
            self.process.close()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.close()


@pytest.fixture(scope="module", params=["thread", "process"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    streamer = Client(request.param)
    yield streamer
    streamer.close()


def test_direct_loopback(benchmark: BenchmarkFixture, sink: Sink, client: Client) -> None:
    benchmark.group = f"proxy-throughput, client in a {client.where}"
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        client, args=(sink.address,), rounds=ROUNDS, warmup_rounds=1)


def test_through_fault_proxy(benchmark: BenchmarkFixture, sink: Sink, client: Client) -> None:
    benchmark.group = f"proxy-throughput, client in a {client.where}"
    direct: list[float] = []
    proxied: list[float] = []

    def timed(address: Address, into: list[float]) -> None:
        start = time.perf_counter()
        client(address)
        into.append(time.perf_counter() - start)

    with FaultProxy(sink.address) as proxy:
        benchmark.pedantic(  # type: ignore[no-untyped-call]
            timed, args=(proxy.address, proxied), rounds=ROUNDS,
            setup=lambda: timed(sink.address, direct), warmup_rounds=1)
        stats = proxy.stats()
    ratio = statistics.median(direct) / statistics.median(proxied)
    benchmark.extra_info["proxied_over_direct"] = round(ratio, 3)
    benchmark.extra_info["proxied_gb_per_s"] = round(
        len(client.payload) / statistics.median(proxied) / 1e9, 3)
    assert stats.bytes_up == len(client.payload) * (ROUNDS + 1)  # no byte lost on the way


def open_client(address: Address) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def ping(sock: socket.socket) -> float:
    start = time.perf_counter()
    sock.sendall(b"x")
    sock.recv(1)
    return time.perf_counter() - start


@pytest.mark.benchmark(group="proxy-latency")
def test_latency_toxic_accuracy_at_50ms(benchmark: BenchmarkFixture, sink: Sink) -> None:
    with FaultProxy(sink.address) as proxy, open_client(proxy.address) as sock:
        baseline = statistics.median(ping(sock) for _ in range(50))
        samples: list[float] = []
        with proxy.add_toxic(network.latency(50)):
            benchmark.pedantic(  # type: ignore[no-untyped-call]
                lambda: samples.append(ping(sock)), rounds=20, iterations=1)
    added_ms = (statistics.median(samples) - baseline) * 1000
    benchmark.extra_info["latency_added_ms"] = round(added_ms, 3)
    benchmark.extra_info["latency_error_ms"] = round(added_ms - 50, 3)
    assert abs(added_ms - 50) <= 2, f"latency toxic added {added_ms:.2f} ms, wanted 50±2"


if __name__ == "__main__":
    {"sink": serve_sink, "client": serve_client}[sys.argv[1]]()
