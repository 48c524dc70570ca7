"""Socket-level faults: refused connects, DNS failures and slow connects, scoped to targets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from faults import network
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import recording
from pytest_resilience.validate import show


@pytest.fixture
def listeners() -> Iterator[list[tuple[str, int]]]:
    socks = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        socks.append(sock)
    yield [s.getsockname() for s in socks]
    for sock in socks:
        sock.close()


def connects(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=5).close()
    except ConnectionRefusedError:
        return False
    return True


def test_connection_refused_only_for_the_given_address(
        listeners: list[tuple[str, int]]) -> None:
    target, other = listeners
    originals = (socket.socket.connect, socket.getaddrinfo)
    with recording() as history, network.connection_refused("localhost", target[1]) as fault:
        assert not connects(target)
        assert not connects(("localhost", target[1]))
        assert connects(other)
        with socket.socket() as sock:
            assert sock.connect_ex(target) == 111
    assert fault.count == 3
    assert connects(target)
    assert (socket.socket.connect, socket.getaddrinfo) == originals
    kinds = [e.kind for e in history.select(source="network.socket")]
    assert kinds == ["fault.armed", "fault.fired", "fault.fired", "fault.fired",
                     "fault.disarmed"]


def test_connection_refused_reaches_asyncio(listeners: list[tuple[str, int]]) -> None:
    target, _ = listeners

    async def main() -> None:
        await asyncio.open_connection(*target)

    with network.connection_refused("127.0.0.1", target[1]), \
            pytest.raises(ConnectionRefusedError):
        asyncio.run(main())


def test_dns_failure_only_for_the_given_name() -> None:
    with network.dns_failure("db.internal") as fault:
        with pytest.raises(socket.gaierror) as info:
            socket.getaddrinfo("db.internal", 5432)
        assert info.value.errno == socket.EAI_NONAME
        with pytest.raises(socket.gaierror):
            socket.create_connection(("DB.internal.", 5432), timeout=1)
        with pytest.raises(socket.gaierror):
            asyncio.run(asyncio.open_connection("db.internal", 5432))
        assert socket.gethostbyname("localhost")
    assert fault.count == 3


def test_slow_connect_waits_on_the_clock_then_connects(
        listeners: list[tuple[str, int]]) -> None:
    target, other = listeners
    clock = VirtualClock()
    with network.slow_connect(250, host="127.0.0.1", port=target[1], clock=clock):
        assert connects(other)
        assert clock.monotonic() == 0.0
        assert connects(target)
        assert clock.monotonic() == 0.25


def test_rules_nest_and_the_patch_goes_with_the_last(
        listeners: list[tuple[str, int]]) -> None:
    target, other = listeners
    original = socket.socket.connect
    outer = network.connection_refused("127.0.0.1", target[1]).start()
    with network.connection_refused("127.0.0.1", other[1]):
        assert not connects(target)
        assert not connects(other)
    assert connects(other)
    assert not connects(target)
    outer.stop()
    assert socket.socket.connect is original


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: network.connection_refused("", 80), "host='' is not a host. Pass a name or "
         "an IP address string."),
        (lambda: network.connection_refused("localhost", 70000), "port=70000 is not a port. "
         "Pass an integer in 1..65535 or None."),
        (lambda: network.slow_connect(-1, host="x"), "ms=-1 is not a valid duration. Pass a "
         "finite number of milliseconds >= 0."),
        # regression: the IDNA codec's UnicodeError did not name host
        (lambda: network.connection_refused("x" * 64, 80), f"host={show('x' * 64)} is not a "
         "host name (encoding with 'idna' codec failed (UnicodeError: label too long)). "
         "Pass a name or an IP address string."),
    ],
)
def test_bad_arguments_name_the_fix(call: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()  # type: ignore[operator]
    assert str(info.value) == message
