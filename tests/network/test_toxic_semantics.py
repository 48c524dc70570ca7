"""Each toxic measured against Toxiproxy's definition (its ``toxics/*.go``), in virtual
time: the proxy runs on a ``VirtualClock`` driven by this test, so every delivery time
is exact and no test waits for real."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faults import network
from faults._network_toxics import Toxic
from faults._toxic_stages import DATA, EOF, Item, make_stage, slice_points
from faults.network import FaultProxy
from pytest_resilience import History, VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def proxy(echo: Any, clock: VirtualClock) -> Iterator[FaultProxy]:
    with FaultProxy(echo.address, name="echo", seed=1, clock=clock) as p:
        yield p


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=10)


def arrivals(sock: socket.socket, clock: VirtualClock, total: int,
             start: float) -> list[tuple[bytes, float]]:
    """Each recv's bytes and the virtual time they arrived, until ``total`` bytes."""
    got: list[tuple[bytes, float]] = []
    while sum(len(d) for d, _ in got) < total:
        data = sock.recv(65536)
        if not data:
            break
        got.append((data, round(clock.monotonic() - start, 9)))
    return got


# -- latency -----------------------------------------------------------------------------------
def test_latency_delays_each_chunk_from_its_own_arrival(proxy: FaultProxy,
                                                        clock: VirtualClock) -> None:
    """3 chunks sent 5 ms apart under latency(30) arrive at 30, 35, 40 ms: pipelined, not
    cumulative (the old proxy delivered the last at 61-67 ms)."""
    proxy.add_toxic(network.latency(30))
    with connect(proxy) as sock:
        start = clock.monotonic()
        for piece in (b"a", b"b", b"c"):
            sock.sendall(piece)
            clock.sleep(0.005)
        got = arrivals(sock, clock, 3, start)
    assert got == [(b"a", 0.030), (b"b", 0.035), (b"c", 0.040)]


def test_jitter_stays_in_its_band_keeps_order_and_replays_by_seed(echo: Any) -> None:
    def run(seed: int) -> list[float]:
        clock = VirtualClock()
        with FaultProxy(echo.address, seed=seed, clock=clock) as proxy:
            proxy.add_toxic(network.latency(50, jitter_ms=20))
            with connect(proxy) as sock:
                start = clock.monotonic()
                times = []
                for i in range(8):
                    sock.sendall(bytes([i]))
                    data = sock.recv(16)
                    assert data == bytes([i])  # one at a time: nothing overtakes
                    times.append(round(clock.monotonic() - start, 9))
                    start = clock.monotonic()
        return times

    first = run(3)
    assert all(0.030 <= t <= 0.070 for t in first)
    assert len(set(first)) > 1
    assert run(3) == first
    assert run(4) != first


def test_two_latency_toxics_add_up(proxy: FaultProxy, clock: VirtualClock) -> None:
    proxy.add_toxic(network.latency(10), name="a")
    proxy.add_toxic(network.latency(15), name="b")
    with connect(proxy) as sock:
        start = clock.monotonic()
        sock.sendall(b"x")
        assert arrivals(sock, clock, 1, start) == [(b"x", 0.025)]


def test_removing_latency_releases_what_it_holds_at_once(proxy: FaultProxy,
                                                         clock: VirtualClock) -> None:
    handle = proxy.add_toxic(network.latency(1000))
    with connect(proxy) as sock:
        start = clock.monotonic()
        sock.sendall(b"held")
        clock.sleep(0.2)
        handle.remove()
        assert arrivals(sock, clock, 4, start) == [(b"held", 0.2)]


# -- bandwidth ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("kb_per_s", "nbytes"), [(50, 100_000), (8, 20_000), (1000, 400_000)])
def test_bandwidth_delivers_at_its_rate(proxy: FaultProxy, clock: VirtualClock,
                                        kb_per_s: int, nbytes: int) -> None:
    """KB is 1000 bytes (bandwidth.go: ``len * ms / rate``); within 10% of the definition
    (exact here, in virtual time)."""
    proxy.add_toxic(network.bandwidth(kb_per_s))
    with connect(proxy) as sock:
        start = clock.monotonic()
        sock.sendall(bytes(nbytes))
        got = arrivals(sock, clock, nbytes, start)
    elapsed = got[-1][1]
    assert sum(len(d) for d, _ in got) == nbytes
    assert elapsed == pytest.approx(nbytes / (kb_per_s * 1000), rel=0.10)
    assert elapsed == pytest.approx(nbytes / (kb_per_s * 1000), abs=1e-6)


def test_bandwidth_sends_big_chunks_in_tenth_of_a_second_pieces() -> None:
    stage = make_stage("b", network.bandwidth(10), _Fx(), 0.0)  # 10 KB/s: 1000 B / 0.1 s
    out = stage.feed([Item(0.0, DATA, bytes(2500))])
    assert [(round(i.due, 9), len(i.data)) for i in out] == [(0.1, 1000), (0.2, 1000),
                                                              (0.25, 500)]


# -- slicer ------------------------------------------------------------------------------------
def test_slicer_cuts_like_toxiproxy_byte_exact(proxy: FaultProxy, clock: VirtualClock) -> None:
    """slicer.go halves a chunk until a piece is at most ``average_size``: 100 bytes at
    30 are 4 pieces of 25, ``delay`` apart."""
    proxy.add_toxic(network.slicer(30, 2.0))
    payload = bytes(range(100))
    with connect(proxy) as sock:
        start = clock.monotonic()
        sock.sendall(payload)
        got = arrivals(sock, clock, 100, start)
    assert [(len(d), t) for d, t in got] == [(25, 0.0), (25, 0.002), (25, 0.004), (25, 0.006)]
    assert b"".join(d for d, _ in got) == payload


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 5000), avg=st.integers(1, 64), data=st.data())
def test_slice_points_keep_every_byte_and_the_size_bounds(size: int, avg: int,
                                                          data: st.DataObject) -> None:
    variation = data.draw(st.integers(0, avg - 1))
    ends = slice_points(size, avg, variation, random.Random(data.draw(st.integers())))
    sizes = [b - a for a, b in zip([0, *ends], ends, strict=False)]
    assert ends[-1] == size
    assert sum(sizes) == size
    assert all(s <= avg + variation for s in sizes)
    if size > avg + variation:
        assert all(s > 0 for s in sizes)


# -- limit_data, slow_close, timeout, reset_peer -------------------------------------------
def test_limit_data_passes_exactly_n_bytes_then_closes(proxy: FaultProxy,
                                                       clock: VirtualClock) -> None:
    history = History()
    proxy.history = history
    proxy.add_toxic(network.limit_data(1000))
    with connect(proxy) as sock:
        sock.sendall(bytes(range(256)) * 10)
        data = b"".join(d for d, _ in arrivals(sock, clock, 10_000, 0.0))
    assert data == (bytes(range(256)) * 10)[:1000]
    proxy.stop()
    close = [e.attrs for e in history.select("proxy.connection") if e.attrs["event"] == "close"]
    assert [(c["outcome"], c["bytes_down"]) for c in close] == [("limit_data", 1000)]


def test_slow_close_passes_data_at_once_and_the_end_late(proxy: FaultProxy,
                                                         clock: VirtualClock) -> None:
    proxy.add_toxic(network.slow_close(250))
    with connect(proxy) as sock:
        start = clock.monotonic()
        sock.sendall(b"bye")
        sock.shutdown(socket.SHUT_WR)
        assert arrivals(sock, clock, 3, start) == [(b"bye", 0.0)]
        assert sock.recv(10) == b""
        assert clock.monotonic() - start == pytest.approx(0.25)


def test_timeout_drops_data_and_closes_after_n_ms(proxy: FaultProxy,
                                                  clock: VirtualClock) -> None:
    proxy.add_toxic(network.timeout(400))
    with connect(proxy) as sock:
        start = clock.monotonic()
        sock.sendall(b"lost")
        assert sock.recv(10) == b""
        assert clock.monotonic() - start == pytest.approx(0.4)
    assert proxy.stats().bytes_down == 0


def test_timeout_zero_stalls_until_the_clients_own_timeout_and_removal_closes(
        proxy: FaultProxy, clock: VirtualClock) -> None:
    handle = proxy.add_toxic(network.timeout(0))
    with connect(proxy) as sock:
        sock.settimeout(0.05)  # the client's own (real) timeout
        sock.sendall(b"lost")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        assert clock.monotonic() == 0.0  # nothing was due: virtual time did not move
        handle.remove()  # Toxiproxy closes what a timeout held
        sock.settimeout(10)
        assert sock.recv(10) == b""


def test_reset_peer_resets_n_ms_after_the_first_data(proxy: FaultProxy,
                                                     clock: VirtualClock) -> None:
    proxy.add_toxic(network.reset_peer(300))
    with connect(proxy) as sock:
        clock.sleep(1.0)  # no data yet: reset_peer.go waits for its first chunk
        start = clock.monotonic()
        sock.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
        assert clock.monotonic() - start == pytest.approx(0.3)
    assert proxy.stats().bytes_down == 0  # the data that armed it is dropped


def test_reset_peer_once_armed_resets_even_if_removed_before_its_time(
        proxy: FaultProxy, clock: VirtualClock) -> None:
    """reset_peer.go waits out its timeout uninterruptibly once data arrived, then
    resets: removing the toxic meanwhile does not give back the dropped data (the old
    proxy cancelled the reset, and the client hung on data that never came)."""
    handle = proxy.add_toxic(network.reset_peer(300))
    with socket.create_connection(proxy.address, timeout=2) as sock:
        start = clock.monotonic()
        sock.sendall(b"ping")
        clock.sleep(0.1)  # the echo reaches the toxic at once and arms it
        handle.remove()
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
        assert clock.monotonic() - start == pytest.approx(0.3)
    assert proxy.stats().bytes_down == 0


def test_down_refuses_then_serves_on_the_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    with network.down(proxy), pytest.raises(ConnectionRefusedError):
        connect(proxy)
    assert proxy.port == port
    with connect(proxy) as sock:
        sock.sendall(b"back")
        assert sock.recv(10) == b"back"


class _Fx:
    rng = random.Random(0)

    def at(self, name: str, when: float, action: str) -> None:
        self.last = (name, when, action)


def test_a_toxic_added_later_goes_at_the_end_of_the_chain() -> None:
    """Toxiproxy appends new toxics: what the first holds passes through the second."""
    fx = _Fx()
    first = make_stage("l", network.latency(100), fx, 0.0)
    held = first.feed([Item(0.0, DATA, b"x"), Item(0.01, EOF)])
    cut = make_stage("t", Toxic("timeout", ms=50.0), fx, 0.02)
    assert cut.feed(held) == []
    assert fx.last == ("t", pytest.approx(0.07), "close")
