"""FaultProxy: a real loopback TCP proxy, driven by real clients (socket, urllib, asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.server
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults import _proxy, network
from faults.network import FaultProxy
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import History, recording
from pytest_resilience._retry import Retry, RetryState


class EchoServer:
    """An asyncio echo server on its own thread (the proxy's upstream)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)
        self.address: tuple[str, int] = self.server.sockets[0].getsockname()[:2]
        self.writers: set[asyncio.StreamWriter] = set()

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._echo, "127.0.0.1", 0)

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
            self.writers.discard(writer)

    async def _stop(self) -> None:
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def http_server() -> Iterator[tuple[str, int]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy(echo.address, name="echo", seed=1) as p:
        yield p


@pytest.fixture
def spare_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxies made now splice bulk, as on a machine with cores to spare."""
    monkeypatch.setattr(_proxy, "_SPLICE_MIN_CPUS", 1)


@pytest.fixture(params=["splice", "copy"])
def path_proxy(request: pytest.FixtureRequest, echo: EchoServer,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A proxy whose toxic-free path splices (Linux, cores to spare) or copies (no
    ``os.splice``, as on two cores)."""
    if request.param == "copy":
        monkeypatch.delattr(os, "splice", raising=False)
    else:
        request.getfixturevalue("spare_cores")
    with FaultProxy(echo.address, name="echo", seed=1) as p:
        yield p


def roundtrip(address: tuple[str, int], payload: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        return recv_all(sock)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n and (chunk := sock.recv(n - len(data))):
        data += chunk
    return data


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# -- forwarding --------------------------------------------------------------------------
def test_forwards_bytes_and_records_connections(path_proxy: FaultProxy) -> None:
    proxy = path_proxy
    payload = bytes(range(256)) * 1000
    with recording() as history:
        assert roundtrip(proxy.address, payload) == payload
        proxy.stop()
    assert proxy.host == "127.0.0.1"
    events = history.select("proxy.connection", source="echo")
    assert [e.attrs["event"] for e in events] == ["open", "close", "stop"]
    close = events[1].attrs
    assert (close["bytes_up"], close["bytes_down"]) == (len(payload), len(payload))
    assert close["outcome"] in ("closed", "stopped")  # stop() may beat the client's FIN
    assert proxy.stats().connections == 1
    assert proxy.stats().bytes_down == len(payload)


def test_a_toxic_added_mid_stream_applies_to_the_next_bytes(path_proxy: FaultProxy) -> None:
    with recording() as history, \
            socket.create_connection(path_proxy.address, timeout=5) as sock:
        sock.sendall(b"a" * 100)
        assert recv_exactly(sock, 100) == b"a" * 100  # no toxic: the fast path
        # Toxiproxy's limit counts from when the toxic applies: 150 more bytes pass
        path_proxy.add_toxic(network.limit_data(150))
        sock.sendall(b"b" * 100 + b"c" * 100)
        assert recv_all(sock) == b"b" * 100 + b"c" * 50
        path_proxy.stop()
    assert path_proxy.stats().bytes_down == 250
    close = [e.attrs for e in history.select("proxy.connection") if e.attrs["event"] == "close"]
    assert [(c["outcome"], c["bytes_down"], c["toxic"]) for c in close] == [
        ("limit_data", 250, "limit_data_downstream")]


@pytest.mark.usefixtures("spare_cores")
def test_a_kernel_that_cannot_splice_sockets_gets_copies(
        echo: EchoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    refused: list[int] = []

    def cannot_splice(*args: object, **kwargs: object) -> int:
        refused.append(1)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "splice", cannot_splice, raising=False)
    payload = bytes(range(256)) * 1000
    with FaultProxy(echo.address, name="echo") as proxy:
        assert roundtrip(proxy.address, payload) == payload
        assert roundtrip(proxy.address, payload) == payload
    assert len(refused) == 1  # asked once, then never again


def counted_splices(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count ``os.splice`` calls (each still made)."""
    real_splice = os.splice
    calls: list[int] = []

    def counting(*args: int, **kwargs: int) -> int:
        calls.append(1)
        return real_splice(*args, **kwargs)

    monkeypatch.setattr(os, "splice", counting)
    return calls


def ping_bulk_ping(proxy: FaultProxy, splices: list[int]) -> list[int]:
    """A 1-byte message, 4 MiB, a 1-byte message on one connection, each echoed intact;
    the splice calls made after the first message and after the bulk."""
    payload = bytes(range(256)) * 4096 * 4
    with socket.create_connection(proxy.address, timeout=5) as sock:
        sock.sendall(b"a")
        assert recv_exactly(sock, 1) == b"a"
        counts = [len(splices)]
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        got = recv_exactly(sock, len(payload))
        sender.join(5)
        assert got == payload
        counts.append(len(splices))
        sock.sendall(b"z")  # and back to a small message on the same connection
        assert recv_exactly(sock, 1) == b"z"
        stats = proxy.stats()
    assert (stats.bytes_up, stats.bytes_down) == (len(payload) + 2, len(payload) + 2)
    return counts


@pytest.mark.skipif(not hasattr(os, "splice"), reason="os.splice is Linux-only")
@pytest.mark.usefixtures("spare_cores")
def test_small_messages_are_copied_at_once_and_bulk_is_spliced(
        echo: EchoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    splices = counted_splices(monkeypatch)
    with FaultProxy(echo.address, name="echo") as proxy:
        after_ping, after_bulk = ping_bulk_ping(proxy, splices)
    assert after_ping == 0  # a 1-byte message: copied, no pipe
    assert after_bulk > 0  # bulk: spliced after its first read


@pytest.mark.skipif(not hasattr(os, "splice"), reason="os.splice is Linux-only")
def test_on_two_cpus_bulk_is_copied_not_spliced(
        echo: EchoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    splices = counted_splices(monkeypatch)
    with FaultProxy(echo.address, name="echo") as proxy:
        assert ping_bulk_ping(proxy, splices) == [0, 0]


@pytest.mark.parametrize(("cpus", "splices"), [
    ({0}, False), ({0, 1}, False), ({0, 1, 2}, True), (set(range(16)), True)])
def test_bulk_is_spliced_only_with_cores_to_spare(
        monkeypatch: pytest.MonkeyPatch, cpus: set[int], splices: bool) -> None:
    monkeypatch.setattr(os, "splice", lambda *args: 0, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cpus, raising=False)
    assert _proxy._splices() is splices
    monkeypatch.delattr(os, "sched_getaffinity")  # no affinity here: every CPU counts
    monkeypatch.setattr(os, "cpu_count", lambda: len(cpus))
    assert _proxy._splices() is splices
    monkeypatch.delattr(os, "splice")
    assert _proxy._splices() is False


def test_out_of_descriptors_pauses_accepting_then_serves(
        echo: EchoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    real_accept = socket.socket.accept
    failures = [OSError(errno.EMFILE, "Too many open files")]

    def accept(sock: socket.socket) -> tuple[socket.socket, object]:
        if failures:
            raise failures.pop()
        return real_accept(sock)

    monkeypatch.setattr(socket.socket, "accept", accept)
    with FaultProxy(echo.address, name="echo", clock=VirtualClock()) as proxy:
        assert roundtrip(proxy.address, b"waited") == b"waited"  # after a virtual second
    assert not failures


def test_urllib_sees_the_proxy_as_the_server(http_server: tuple[str, int]) -> None:
    with FaultProxy(http_server, name="http") as proxy, \
            urllib.request.urlopen(f"{proxy.url}/ok", timeout=5) as response:
        assert response.read() == b"hello /ok"


# -- toxics through real clients ---------------------------------------------------------
def read_timeout_hit(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
    except TimeoutError:
        return True
    except urllib.error.URLError as exc:
        return isinstance(exc.reason, TimeoutError)
    return False


@pytest.mark.parametrize(
    "toxic", [network.timeout(0), network.latency(60)], ids=["timeout", "latency"]
)
def test_urllib_hits_its_own_timeout(http_server: tuple[str, int],
                                     toxic: network.Toxic) -> None:
    with FaultProxy(http_server, name="http") as proxy:
        with proxy.add_toxic(toxic):
            assert read_timeout_hit(f"{proxy.url}/slow", timeout=0.015)
        assert not read_timeout_hit(f"{proxy.url}/fine", timeout=5)


@pytest.mark.parametrize(
    ("toxic", "after_removal"),
    [(network.timeout(0), b""), (network.latency(60), b"pingpong")],
    ids=["timeout", "latency"],
)
def test_asyncio_stream_client_hits_its_timeout(proxy: FaultProxy, toxic: network.Toxic,
                                                after_removal: bytes) -> None:
    """Removing latency releases the held bytes; removing timeout closes the connection
    (Toxiproxy's cleanup: the bytes it dropped would corrupt the stream)."""
    async def main() -> tuple[bool, bytes]:
        reader, writer = await asyncio.open_connection(*proxy.address)
        with proxy.add_toxic(toxic):
            writer.write(b"ping")
            try:
                await asyncio.wait_for(reader.readexactly(4), timeout=0.015)
                timed_out = False
            except TimeoutError:
                timed_out = True
        writer.write(b"pong")  # toxic removed on this very connection
        after = await asyncio.wait_for(reader.read(8), timeout=5)
        if after and len(after) < 8:
            after += await asyncio.wait_for(reader.readexactly(8 - len(after)), timeout=5)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        return timed_out, after

    timed_out, after = asyncio.run(main())
    assert timed_out
    assert after == after_removal


def test_reset_peer_resets_an_open_connection(proxy: FaultProxy) -> None:
    with socket.create_connection(proxy.address, timeout=5) as sock:
        sock.sendall(b"a")
        assert sock.recv(1) == b"a"
        with proxy.add_toxic(network.reset_peer(0)):
            sock.sendall(b"b")  # the echo is the first data the toxic sees: reset
            with pytest.raises(ConnectionResetError):
                sock.recv(1)


def test_asyncio_stream_client_sees_a_reset_and_a_refusal(proxy: FaultProxy) -> None:
    async def main() -> None:
        reader, writer = await asyncio.open_connection(*proxy.address)
        writer.write(b"a")
        assert await asyncio.wait_for(reader.readexactly(1), timeout=5) == b"a"
        with proxy.add_toxic(network.reset_peer(0)):
            writer.write(b"b")
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(1), timeout=5)
        writer.close()
        with proxy.down(), pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(asyncio.open_connection(*proxy.address), timeout=5)

    asyncio.run(main())


def is_reset(exc: OSError) -> bool:
    """urllib raises a reset as is, or wrapped in URLError if it came while sending."""
    return isinstance(exc, ConnectionResetError) or isinstance(
        getattr(exc, "reason", None), ConnectionResetError)


def test_urllib_sees_a_reset_and_a_refusal(http_server: tuple[str, int]) -> None:
    with FaultProxy(http_server, name="http") as proxy:
        with proxy.add_toxic(network.reset_peer(0)), pytest.raises(OSError) as reset:
            urllib.request.urlopen(f"{proxy.url}/reset", timeout=5)
        assert is_reset(reset.value)
        with proxy.down(), pytest.raises(urllib.error.URLError) as refused:
            urllib.request.urlopen(f"{proxy.url}/down", timeout=5)
        assert isinstance(refused.value.reason, ConnectionRefusedError)
        with urllib.request.urlopen(f"{proxy.url}/up", timeout=5) as response:
            assert response.read() == b"hello /up"


def test_timeout_with_a_delay_closes_the_connection_without_data(proxy: FaultProxy) -> None:
    with proxy.add_toxic(network.timeout(5)), \
            socket.create_connection(proxy.address, timeout=5) as sock:
        sock.sendall(b"lost")
        assert recv_all(sock) == b""
    assert proxy.stats().bytes_down == 0


def test_down_refuses_and_drops_then_comes_back_on_the_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    with socket.create_connection(proxy.address, timeout=5) as open_sock:
        open_sock.sendall(b"a")
        assert open_sock.recv(1) == b"a"
        with network.down(proxy):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(proxy.address, timeout=5)
            with contextlib.suppress(ConnectionResetError):
                assert open_sock.recv(1) == b""
        assert proxy.port == port
        assert roundtrip(proxy.address, b"back") == b"back"


def test_limit_data_truncates_then_closes(proxy: FaultProxy) -> None:
    proxy.add_toxic(network.limit_data(10))
    assert roundtrip(proxy.address, b"x" * 100) == b"x" * 10


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(min_size=1, max_size=4096),
       avg=st.integers(1, 64), direction=st.sampled_from(network.DIRECTIONS))
def test_delaying_toxics_never_change_the_bytes(proxy: FaultProxy, payload: bytes, avg: int,
                                                direction: network.Direction) -> None:
    handles = [
        proxy.add_toxic(network.slicer(avg, 0.1, size_variation=avg // 2),
                        direction=direction, name="s"),
        proxy.add_toxic(network.latency(1, jitter_ms=1), direction=direction, name="l"),
        proxy.add_toxic(network.bandwidth(100_000), direction=direction, name="b"),
        proxy.add_toxic(network.slow_close(1), direction=direction, name="c"),
    ]
    try:
        assert roundtrip(proxy.address, payload) == payload
    finally:
        for handle in handles:
            handle.remove()
    assert proxy.toxics == {}


def decisions(seed: int, n: int = 24) -> list[bool]:
    history = History()
    with echo_server() as echo, \
            FaultProxy(echo.address, name="p", seed=seed, history=history) as proxy:
        proxy.add_toxic(network.latency(0), toxicity=0.5)
        for _ in range(n):
            roundtrip(proxy.address, b".")
    return [e.attrs["applied"] for e in history.select("proxy.toxic") if "applied" in e.attrs]


@contextlib.contextmanager
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


def test_toxicity_is_drawn_per_connection_from_the_seed() -> None:
    first = decisions(seed=7)
    assert first == decisions(seed=7)
    assert first != decisions(seed=8)
    assert True in first
    assert False in first


def test_toxic_decisions_are_events(proxy: FaultProxy) -> None:
    with recording() as history:
        with proxy.add_toxic(network.latency(1), direction="upstream"):
            roundtrip(proxy.address, b"abc")
        proxy.stop()  # every close is recorded by now
    toxic = [(e.attrs["event"], e.attrs.get("applied")) for e in history.select("proxy.toxic")]
    assert toxic == [("added", None), ("decided", True), ("removed", None)]
    fired = history.select("fault.fired", source="echo")
    assert [(e.attrs["action"], e.attrs["direction"]) for e in fired] == [
        ("latency(ms=1, jitter_ms=0)", "upstream")]
    close = [e.attrs for e in history.select("proxy.connection")
             if e.attrs["event"] == "close"]
    assert [c["toxic"] for c in close] == ["latency_upstream"]


def test_retry_recovers_once_the_toxic_is_removed(http_server: tuple[str, int]) -> None:
    def fetch(url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bytes(response.read())

    with recording() as history, FaultProxy(http_server, name="http") as proxy:
        toxic = proxy.add_toxic(network.reset_peer(0))

        def heal(state: RetryState) -> None:
            if state.attempt == 2:
                toxic.remove()

        retry = Retry(attempts=5, retry_on=OSError, on_retry=heal, clock=VirtualClock(),
                      seed=1, name="fetch")
        assert retry.call(fetch, f"{proxy.url}/model") == b"hello /model"
    outcomes = [e.attrs["outcome"] for e in history.select("retry.attempt", source="fetch")]
    assert outcomes == ["error", "error", "ok"]
    closes = [e.attrs["outcome"] for e in history.select("proxy.connection")
              if e.attrs["event"] == "close"]
    assert closes[:2] == ["reset_peer", "reset_peer"]
    assert closes[2:] in (["closed"], ["stopped"])  # the last may still be open at stop


# -- lifecycle (cleanliness: tests/network/test_refusal_and_cleanliness.py) ---------------
def test_async_context_manager_starts_and_stops(echo: EchoServer) -> None:
    async def main() -> bytes:
        async with FaultProxy(echo.address, name="a") as proxy:
            reader, writer = await asyncio.open_connection(*proxy.address)
            writer.write(b"hi")
            data = await reader.readexactly(2)
            writer.close()
            await writer.wait_closed()
        assert not proxy.running
        return data

    assert asyncio.run(main()) == b"hi"


def test_stress_200_concurrent_connections_lose_no_byte(path_proxy: FaultProxy) -> None:
    proxy = path_proxy

    async def client(i: int) -> bool:
        payload = (i.to_bytes(2, "big") + bytes(range(256))) * 256  # 64 KiB each
        reader, writer = await asyncio.open_connection(*proxy.address)
        writer.write(payload)
        writer.write_eof()
        data = await reader.read(-1)
        writer.close()
        await writer.wait_closed()
        return data == payload

    async def main() -> list[bool]:
        return await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(200))), 5)

    assert all(asyncio.run(main()))
    stats = proxy.stats()
    assert stats.connections == 200
    assert stats.bytes_up == stats.bytes_down == 200 * 258 * 256


# -- arguments -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: network.latency(-1), "ms=-1 is not a valid duration. Pass a finite number "
         "of milliseconds >= 0."),
        (lambda: network.bandwidth(0), "kb_per_s=0 is not a valid rate. Pass a finite "
         "number > 0 (use timeout(0) to stop data altogether)."),
        (lambda: network.slicer(4, size_variation=4), "size_variation=4 is not below "
         "avg_size=4. Pass a variation smaller than the average size."),
        (lambda: network.limit_data(-5), "nbytes=-5 is not valid. Pass an integer >= 0."),
        (lambda: FaultProxy(("127.0.0.1", 0)), "upstream=('127.0.0.1', 0) is not an "
         "address. Pass a (host, port) tuple such as ('127.0.0.1', 8080)."),
    ],
)
def test_bad_arguments_name_the_fix(call: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()  # type: ignore[operator]
    assert str(info.value) == message


def test_add_toxic_rejects_bad_direction_toxicity_and_duplicates(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match=r"direction='sideways' is not a direction"):
        proxy.add_toxic(network.latency(1), direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"toxicity=1.5 is not a probability"):
        proxy.add_toxic(network.latency(1), toxicity=1.5)
    proxy.add_toxic(network.latency(1))
    with pytest.raises(ValueError, match=r"name='latency_downstream' is already installed"):
        proxy.add_toxic(network.latency(2))
    with pytest.raises(KeyError, match="no toxic named 'nope'"):
        proxy.remove_toxic("nope")
    proxy.reset()
    assert proxy.toxics == {}
