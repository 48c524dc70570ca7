"""FaultProxy costs beside the peer: a direct loopback connection and a naive
thread-per-direction relay (``recv``/``sendall`` on two threads per connection, what one
writes in ten lines). Throughput with no toxic, the 1-byte round trip, and how exactly
the latency and bandwidth toxics keep their definitions on the real clock.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_proxy.py --benchmark-only``
(``--benchmark-json=out.json`` then ``scripts/bench_report.py`` for ratios.md).
Targets: throughput >= 0.8x direct loopback, 1-byte round trip no slower than the relay.
Toxiproxy itself cannot be installed from any registry reachable here (no PyPI/npm/apt
package for the server), so it has no column.

The machine's bound: ``splice_relay.c``, a relay in C (two threads per connection, each
splicing one direction through a pipe), built with ``cc`` when there is one. On a box with
two cores a relay is a third busy party beside the client and the upstream, and no relay
reaches 0.8x direct there; the ratio to this one says how much of the gap is ours.

Fairness: the upstream runs in its own process; each throughput round streams the same
64 MiB over a fresh connection, direct, through the proxy and through the relay. The
client runs in this process (``thread``: it shares the GIL with the proxy's thread, as a
test's client does) or in its own (``process``: only the proxy's cost is measured). The
``interleaved`` benchmarks time the three routes one after the other in every round and
report ratios of medians, so load on a shared machine hits all three alike; the
summary lines are printed at the end of the run.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from faults import network
from faults.network import FaultProxy

MIB = 64  # streamed per throughput round
ROUNDS = 9
PINGS = 400  # 1-byte round trips per round
Address = tuple[str, int]
ROUTES = ("direct_loopback", "ours_fault_proxy", "naive_relay", "c_splice_relay")


# -- the upstream and the client, in processes of their own --------------------------------
def serve_sink() -> None:
    """The upstream: on each connection a 1-byte message is echoed (ping); anything
    longer is read to EOF and answered with the byte count (throughput)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    print(server.getsockname()[1], flush=True)

    def handle(conn: socket.socket) -> None:
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

    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def stream(address: Address, payload: bytes) -> None:
    """Send ``payload`` on a fresh connection and check the sink's byte count."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(8):
            answer += chunk
    assert int.from_bytes(answer, "big") == len(payload)


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


# -- the peer: a naive thread-per-direction relay -------------------------------------------
class NaiveRelay:
    """Accepts on 127.0.0.1 and, per connection, copies each direction on its own thread
    with blocking ``recv``/``sendall``; every thread is joined at ``close``."""

    def __init__(self, upstream: Address) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.address: Address = self.server.getsockname()[:2]
        self.sockets: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept)]
        self.threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                thread = threading.Thread(target=self._pump, args=(src, dst))
                self.threads.append(thread)
                thread.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(1 << 18):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self.threads:
            thread.join(10)


# -- the machine's bound: a splice relay in C ----------------------------------------------
def c_splice_relay(upstream: Address, build_dir: Path) -> subprocess.Popen[str] | None:
    """``splice_relay.c`` built and started, or None where no C compiler is found."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary = build_dir / "splice_relay"
    subprocess.run([compiler, "-O2", "-pthread", "-o", str(binary),
                    str(Path(__file__).with_name("splice_relay.c"))], check=True)
    return subprocess.Popen([str(binary), str(upstream[1])], text=True,
                            stdout=subprocess.PIPE)


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sink() -> Iterator[Address]:
    server = Process("sink")
    yield ("127.0.0.1", int(server.stdout.readline()))
    server.close()


@pytest.fixture(scope="module")
def routes(sink: Address, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[dict[str, Address]]:
    """Every route to the sink; ``c_splice_relay`` only where ``cc`` built it."""
    relay = NaiveRelay(sink)
    c_relay = c_splice_relay(sink, tmp_path_factory.mktemp("relay"))
    with FaultProxy(sink, name="bench") as proxy:
        found = {"direct_loopback": sink, "ours_fault_proxy": proxy.address,
                 "naive_relay": relay.address}
        if c_relay is not None:
            assert c_relay.stdout is not None
            found["c_splice_relay"] = ("127.0.0.1", int(c_relay.stdout.readline()))
        yield found
    relay.close()
    if c_relay is not None:
        c_relay.kill()
        c_relay.wait(5)
        assert c_relay.stdout is not None
        c_relay.stdout.close()


def route_to(routes: dict[str, Address], route: str) -> Address:
    if route not in routes:
        pytest.skip(f"{route}: no C compiler (cc) found to build splice_relay.c")
    return routes[route]


@pytest.fixture(scope="module", params=["thread", "process"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    streamer = Client(request.param)
    yield streamer
    streamer.close()


@pytest.fixture(scope="module")
def summary(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    lines: list[str] = []
    yield lines
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or not lines:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(f"proxy benchmark: {line}")


def load() -> str:
    with contextlib.suppress(OSError), open("/proc/loadavg", encoding="ascii") as f:
        return "load " + " ".join(f.read().split()[:3])
    return "load unknown"


def ratios(timings: dict[str, list[float]]) -> dict[str, float]:
    """Medians of the routes as ratios: our throughput or speed over each peer's, and the
    C relay's over direct (the machine's bound for any relay)."""
    med = {route: statistics.median(values) for route, values in timings.items()}
    got = {"ours_over_direct": med["direct_loopback"] / med["ours_fault_proxy"],
           "ours_over_relay": med["naive_relay"] / med["ours_fault_proxy"]}
    if "c_splice_relay" in med:
        got["ours_over_c_relay"] = med["c_splice_relay"] / med["ours_fault_proxy"]
        got["c_relay_over_direct"] = med["direct_loopback"] / med["c_splice_relay"]
    return got


def c_relay_words(got: dict[str, float], figures: dict[str, float], unit: str = "") -> str:
    """The summary's words for the C relay (empty where it was not built)."""
    if "ours_over_c_relay" not in got:
        return ""
    return (f", {got['ours_over_c_relay']:.2f}x the C splice relay "
            f"({figures['c_splice_relay']:.1f}{unit}; the machine's bound for a relay: "
            f"{got['c_relay_over_direct']:.2f}x direct)")


# -- throughput --------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
def test_throughput(benchmark: BenchmarkFixture, routes: dict[str, Address], client: Client,
                    route: str) -> None:
    benchmark.group = f"proxy-throughput, client in a {client.where}"
    benchmark.extra_info["mib_per_round"] = MIB
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        client, args=(route_to(routes, route),), rounds=ROUNDS, warmup_rounds=1)


def test_throughput_interleaved(benchmark: BenchmarkFixture, routes: dict[str, Address],
                                client: Client, summary: list[str]) -> None:
    """Every route in turn, every round: ratios that load cannot skew."""
    benchmark.group = f"proxy-throughput, client in a {client.where}"
    timings: dict[str, list[float]] = {route: [] for route in routes}

    def one_round() -> None:
        for route, address in routes.items():
            start = time.perf_counter()
            client(address)
            timings[route].append(time.perf_counter() - start)

    benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1)  # type: ignore[no-untyped-call]
    got = ratios(timings)
    mib_s = {route: MIB / statistics.median(t) for route, t in timings.items()}
    benchmark.extra_info.update({k: round(v, 3) for k, v in got.items()})
    benchmark.extra_info.update({f"{r}_mib_per_s": round(v) for r, v in mib_s.items()})
    summary.append(
        f"throughput, client in a {client.where}: ours {mib_s['ours_fault_proxy']:.0f} MiB/s "
        f"= {got['ours_over_direct']:.2f}x direct ({mib_s['direct_loopback']:.0f}), "
        f"{got['ours_over_relay']:.2f}x the naive relay ({mib_s['naive_relay']:.0f})"
        f"{c_relay_words(got, mib_s)}; "
        f"median of {ROUNDS}; {load()}")


# -- 1-byte round trip -------------------------------------------------------------------------
def pinger(address: Address) -> tuple[socket.socket, Callable[[], None]]:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ping() -> None:
        sock.sendall(b"x")
        sock.recv(1)

    return sock, ping


@pytest.mark.parametrize("route", ROUTES)
def test_one_byte_round_trip(benchmark: BenchmarkFixture, routes: dict[str, Address],
                             route: str) -> None:
    benchmark.group = "proxy-1-byte-round-trip (client in this process)"
    sock, ping = pinger(route_to(routes, route))
    with sock:
        benchmark.pedantic(ping, rounds=ROUNDS * PINGS, warmup_rounds=50)  # type: ignore[no-untyped-call]


def test_one_byte_round_trip_interleaved(benchmark: BenchmarkFixture,
                                         routes: dict[str, Address],
                                         summary: list[str]) -> None:
    benchmark.group = "proxy-1-byte-round-trip (client in this process)"
    socks, pings = zip(*(pinger(address) for address in routes.values()), strict=True)
    timings: dict[str, list[float]] = {route: [] for route in routes}

    def one_round() -> None:
        for route, ping in zip(routes, pings, strict=True):
            samples = []
            for _ in range(PINGS):
                start = time.perf_counter()
                ping()
                samples.append(time.perf_counter() - start)
            timings[route].append(statistics.median(samples))

    try:
        benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1)  # type: ignore[no-untyped-call]
    finally:
        for sock in socks:
            sock.close()
    got = ratios(timings)
    micros = {route: statistics.median(t) * 1e6 for route, t in timings.items()}
    benchmark.extra_info.update({f"{r}_us": round(v, 1) for r, v in micros.items()})
    benchmark.extra_info.update({k: round(v, 3) for k, v in got.items()})
    summary.append(
        f"1-byte round trip: ours {micros['ours_fault_proxy']:.1f} us, direct "
        f"{micros['direct_loopback']:.1f} us, naive relay {micros['naive_relay']:.1f} us "
        f"(ours is {got['ours_over_relay']:.2f}x the relay's speed)"
        f"{c_relay_words(got, micros, ' us')}; "
        f"median of {ROUNDS} rounds of {PINGS}; {load()}")


# -- toxics on the real clock ------------------------------------------------------------------
@pytest.fixture
def echo_proxy(sink: Address) -> Iterator[FaultProxy]:
    with FaultProxy(sink, name="toxic") as proxy:
        yield proxy


@pytest.mark.benchmark(group="proxy-toxics (real clock)")
def test_latency_toxic_accuracy_at_50ms(benchmark: BenchmarkFixture,
                                        echo_proxy: FaultProxy, summary: list[str]) -> None:
    sock, ping = pinger(echo_proxy.address)
    with sock:
        def timed() -> float:
            start = time.perf_counter()
            ping()
            return time.perf_counter() - start

        baseline = statistics.median(timed() for _ in range(50))
        samples: list[float] = []
        with echo_proxy.add_toxic(network.latency(50)):
            benchmark.pedantic(  # type: ignore[no-untyped-call]
                lambda: samples.append(timed()), rounds=20, iterations=1)
    added_ms = (statistics.median(samples) - baseline) * 1000
    benchmark.extra_info["latency_added_ms"] = round(added_ms, 3)
    summary.append(f"latency(50): {added_ms:.2f} ms added per 1-byte round trip")


@pytest.mark.benchmark(group="proxy-toxics (real clock)")
def test_latency_toxic_is_pipelined(benchmark: BenchmarkFixture, echo_proxy: FaultProxy,
                                    summary: list[str]) -> None:
    """3 one-byte chunks sent 5 ms apart under latency(30): Toxiproxy's definition says
    they arrive at about 30, 35 and 40 ms (the old proxy: 61-67 ms for the last)."""
    arrivals: list[list[float]] = []

    def run() -> None:
        with socket.create_connection(echo_proxy.address, timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.perf_counter()
            for _ in range(3):
                sock.sendall(b"x")  # each is a ping: echoed at once by the sink
                time.sleep(0.005)
            got: list[float] = []
            received = 0
            while received < 3:
                received += len(sock.recv(3))
                got.append((time.perf_counter() - start) * 1000)
            arrivals.append(got)

    with echo_proxy.add_toxic(network.latency(30)):
        benchmark.pedantic(run, rounds=10, iterations=1)  # type: ignore[no-untyped-call]
    last = statistics.median(a[-1] for a in arrivals)
    benchmark.extra_info["last_chunk_ms"] = round(last, 2)
    summary.append(f"latency(30), 3 chunks 5 ms apart: the last arrives after {last:.1f} ms "
                   "(definition: ~40)")


@pytest.mark.benchmark(group="proxy-toxics (real clock)")
def test_bandwidth_toxic_accuracy(benchmark: BenchmarkFixture, echo_proxy: FaultProxy,
                                  summary: list[str]) -> None:
    """1 MB through bandwidth(5000) (KB/s, 1 KB = 1000 B): 0.2 s by definition."""
    payload = bytes(1_000_000)
    took: list[float] = []

    def run() -> None:
        start = time.perf_counter()
        stream(echo_proxy.address, payload)
        took.append(time.perf_counter() - start)

    with echo_proxy.add_toxic(network.bandwidth(5000), direction="upstream"):
        benchmark.pedantic(run, rounds=5, iterations=1)  # type: ignore[no-untyped-call]
    error = statistics.median(took) / 0.2 - 1
    benchmark.extra_info["bandwidth_error"] = round(error, 4)
    summary.append(f"bandwidth(5000 KB/s), 1 MB: {statistics.median(took) * 1000:.1f} ms "
                   f"({error:+.1%} of the definition)")


if __name__ == "__main__":
    {"sink": serve_sink, "client": serve_client}[sys.argv[1]]()
