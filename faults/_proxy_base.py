"""What every fault proxy shares: the loopback listener, accepting clients, connecting
upstream, refusing like the upstream does, ``down``, per-run numbering and events.

Upstream refusal. A TCP client's ``connect()`` completes in the kernel before any proxy
can know whether the upstream answers, so the first client after the upstream went
away cannot be refused: it is reset (RST) and the proxy writes ``proxy.upstream``
(``state="refused"``) and a ``proxy.connection`` close with
``outcome="upstream_refused"``. From then on the proxy stops listening, so every later
client gets ``ConnectionRefusedError`` exactly as from the dead service, until the
upstream accepts again: the proxy probes it every 10 ms of real time (on a
``VirtualClock``: whenever the test reads or moves the clock, so that replays agree).
The port stays reserved meanwhile (a bound, non-listening ``SO_REUSEPORT`` twin holds
it), and ``down()`` uses the same mechanism.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import random
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from faults._loop import READ, WRITE, Loop, Timer
from pytest_resilience import Clock, History, VirtualClock, emit, validate
from pytest_resilience.kinds import (
    FAULT_ARMED,
    FAULT_DISARMED,
    FAULT_FIRED,
    PROXY_CONNECTION,
    PROXY_TOXIC,
    PROXY_UPSTREAM,
)

__all__ = ["BaseConn", "ProxyBase", "ProxyStats", "reset_close"]

T = TypeVar("T")

_LOOPBACK = "127.0.0.1"
_ACCEPTS = 64  # clients accepted per wake-up of the listener
_PROBE_EVERY = 0.010  # real seconds between probes of a refusing upstream
_PROBE_TIMEOUT = 1.0  # seconds a probe waits for the upstream to answer
_EMFILE_PAUSE = 1.0  # seconds (on the proxy's clock) accepting pauses when out of fds


@dataclass
class ProxyStats:
    """Counters of a proxy since it started (a snapshot; plain values)."""

    connections: int = 0
    open: int = 0
    refused: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    toxics_applied: int = 0


def reset_close(sock: socket.socket) -> None:
    """Close with a TCP RST (``SO_LINGER`` 0), as Toxiproxy's ``reset_peer`` does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _reuse(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


class BaseConn:
    """A client connection: its number in the run, its sockets, how it ended."""

    def __init__(self, proxy: ProxyBase, conn_id: int, client: socket.socket) -> None:
        self.proxy = proxy
        self.id = conn_id
        self.client = client
        self.upstream: socket.socket | None = None
        self.done = False
        self.outcome = "closed"
        self.timers: dict[str, Timer] = {}

    def start(self) -> None:
        """The upstream is connected: start serving (the subclass's work)."""
        raise NotImplementedError

    def finish(self, outcome: str, *, reset: bool = False, **attrs: Any) -> None:
        """Close both sides once (with RST when ``reset``), write the close event."""
        if self.done:
            return
        self.done = True
        self.outcome = outcome
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self.release()
        loop = self.proxy.loop
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            if loop is not None:
                loop.unwatch(sock.fileno())
            if reset:
                reset_close(sock)
            else:
                sock.close()
        self.proxy._closed(self, attrs)

    def release(self) -> None:
        """Give back what the subclass holds (pipes), before the sockets close."""

    def close_attrs(self) -> dict[str, Any]:
        """Attributes of this connection's ``close`` event (the subclass adds its own)."""
        return {}

    def sent(self) -> tuple[int, int]:
        """Bytes delivered upstream and downstream so far, if the subclass counts them
        per connection (else it adds them to the proxy's stats itself)."""
        return 0, 0


class ProxyBase:
    """A loopback proxy to ``upstream`` (the shared part; see ``FaultProxy``)."""

    family = "network"

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        name: str,
        seed: int,
        clock: Clock | None,
        history: History | None,
    ) -> None:
        if (
            not isinstance(upstream, tuple)
            or len(upstream) != 2
            or not isinstance(upstream[0], str)
            or isinstance(upstream[1], bool)
            or not isinstance(upstream[1], int)
            or not 0 < upstream[1] < 65536
        ):
            raise ValueError(
                f"upstream={validate.show(upstream)} is not an address. Pass a (host, port) "
                "tuple such as ('127.0.0.1', 8080)."
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"name={validate.show(name)} is not a proxy name. Pass a "
                             "non-empty string.")
        self.upstream = upstream
        self.name = name
        self.seed = validate.count(seed, "seed", low=-(2**63), what="a seed",
                                    accepted="an integer")
        self.clock: Clock = validate.clock(clock)
        self.history = validate.history(history)
        self.rng = random.Random(self.seed)
        self.loop: Loop | None = None
        self._stats = ProxyStats()
        self._conns: dict[int, BaseConn] = {}
        self._ids = itertools.count(1)
        self._sockaddr: tuple[Any, ...] = ()
        self._family = socket.AF_INET
        self._server: socket.socket | None = None  # the listener, while listening
        self._holder: socket.socket | None = None  # keeps the port while not listening
        self._port = 0
        self._down = False
        self._refusing = False
        self._probe: Timer | None = None
        self._lock = threading.Lock()  # start/stop only

    # -- public state --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the proxy is serving."""
        return self.loop is not None

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return _LOOPBACK

    @property
    def port(self) -> int:
        """The listening port (chosen by the OS at ``start()``)."""
        if not self._port:
            raise RuntimeError(f"proxy {self.name!r} is not started; call start() first.")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to point a client at."""
        return (self.host, self.port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, for HTTP clients."""
        return f"http://{self.host}:{self.port}"

    @property
    def refusing(self) -> bool:
        """Whether clients are refused now (``down()``, or the upstream refuses)."""
        return self._down or self._refusing

    def stats(self) -> ProxyStats:
        """A snapshot of the proxy's counters."""
        return self._locked(self._snapshot)

    def _snapshot(self) -> ProxyStats:
        stats = ProxyStats(**vars(self._stats))
        for conn in self._conns.values():
            up, down = conn.sent()
            stats.bytes_up += up
            stats.bytes_down += down
        return stats

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Any:
        """Listen on ``127.0.0.1`` (port chosen by the OS) and serve; returns the proxy."""
        with self._lock:
            if self.loop is not None:
                raise RuntimeError(f"proxy {self.name!r} is already started.")
            info = socket.getaddrinfo(*self.upstream, type=socket.SOCK_STREAM)[0]
            self._family, self._sockaddr = info[0], info[4]
            holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                _reuse(holder)
                holder.bind((_LOOPBACK, 0))
            except BaseException:
                holder.close()
                raise
            self._holder, self._port = holder, holder.getsockname()[1]
            self._start_loop()
        self._event(PROXY_CONNECTION, event="listen", port=self._port,
                    upstream=f"{self.upstream[0]}:{self.upstream[1]}", seed=self.seed,
                    bytes_up=0, bytes_down=0, toxic=None)
        return self

    def stop(self) -> None:
        """Close the listener and every connection, stop and join the thread. Idempotent."""
        with self._lock:
            loop = self.loop
            if loop is None:
                return
            loop.run(self._shut, "stopped")
            loop.stop()
            self.loop = None
            if self._holder is not None:
                self._holder.close()
                self._holder = None
            self._stopped()
        stats = self.stats()
        self._event(PROXY_CONNECTION, event="stop", connections=stats.connections,
                    bytes_up=stats.bytes_up, bytes_down=stats.bytes_down, toxic=None)
        if loop.failures:
            raise RuntimeError(f"proxy {self.name!r} hit a bug while serving (every socket "
                               f"is closed now): {loop.failures[0]!r}") from loop.failures[0]

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Any:
        return self.start()  # blocks the caller's loop for a moment only

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    def down(self) -> _Down:
        """Refuse new connections and drop the open ones; ``with proxy.down():`` undoes it."""
        loop = self._loop()
        if not self._down:
            self._event(FAULT_ARMED, family=self.family, fault="down", action="down")
            loop.run(self._go_down)
            self._event(FAULT_FIRED, family=self.family, fault="down", action="down",
                        trigger="always", call=0)
            self._event(PROXY_TOXIC, event="down", toxic="down", direction="both",
                        toxicity=1.0)
        return _Down(self)

    def up(self) -> None:
        """Listen again on the same port after ``down()``."""
        if not self._down or self.loop is None:
            return
        self.loop.run(self._go_up)
        self._event(PROXY_TOXIC, event="up", toxic="down", direction="both", toxicity=1.0)
        self._event(FAULT_DISARMED, family=self.family, fault="down", action="down")

    @contextlib.contextmanager
    def run_on(self, clock: Clock, history: History | None) -> Iterator[Any]:
        """For one chaos run: serve on ``clock``, write to ``history``, number connections
        from 1 and draw from a fresh ``random.Random(seed)``; the connections open at
        either end of the run are closed (``outcome="run_end"``)."""
        saved = (self.clock, self.history)
        self._rebind(clock, history)
        try:
            yield self
        finally:
            self._rebind(*saved)

    # -- for subclasses --------------------------------------------------------------------
    def _new_conn(self, conn_id: int, client: socket.socket) -> BaseConn:
        raise NotImplementedError

    def _stopped(self) -> None:
        """Release what the subclass holds once the loop stopped."""

    def _reset_run(self) -> None:
        """Forget per-run counters (a chaos run begins or ends)."""

    def _event(self, kind: str, **attrs: Any) -> None:
        emit(kind, self.name, self.clock, history=self.history, **attrs)

    def _loop(self) -> Loop:
        if self.loop is None:
            raise RuntimeError(f"proxy {self.name!r} is not started; call start() first.")
        return self.loop

    def _locked(self, fn: Callable[[], T]) -> T:
        """``fn()`` holding the loop's mutex (directly when the proxy is stopped)."""
        loop = self.loop
        return fn() if loop is None else loop.run(fn)

    # -- loop plumbing (mutex held) ----------------------------------------------------------
    def _start_loop(self) -> None:
        loop = Loop(self.name, self.clock)
        loop.busy = lambda: bool(self._conns) or loop.next_deadline() < float("inf")
        if isinstance(self.clock, VirtualClock):
            loop.on_settle = self._settle_probe
        self.loop = loop
        loop.run(self._go_up if not self._down else lambda: None)
        loop.start()

    def _rebind(self, clock: Clock, history: History | None) -> None:
        with self._lock:
            loop = self.loop
            if loop is not None:
                loop.run(self._shut, "run_end")
                loop.stop()
            self.clock, self.history = clock, history
            self._ids = itertools.count(1)
            self.rng = random.Random(self.seed)
            self._reset_run()
            if loop is not None:
                self._start_loop()

    def _shut(self, outcome: str) -> None:
        """Stop listening and finish every connection."""
        self._close_listener()
        for conn in list(self._conns.values()):
            conn.finish(outcome, reset=outcome == "down")
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    def _go_down(self) -> None:
        self._down = True
        self._shut("down")

    def _go_up(self) -> None:
        self._down = False
        self._refusing = False
        self._listen()

    def _listen(self) -> None:
        loop = self._loop()
        if self._server is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            _reuse(listener)
            listener.bind((_LOOPBACK, self._port))
            listener.listen(socket.SOMAXCONN)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._server = listener
        loop.watch(listener.fileno(), lambda _: self._accept(listener), READ)

    def _close_listener(self) -> None:
        if self._server is not None:
            self._loop().unwatch(self._server.fileno())
            self._server.close()
            self._server = None

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(_ACCEPTS):
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError:  # out of descriptors or memory: pause, as asyncio does
                loop = self._loop()
                loop.modify(listener.fileno(), 0)
                loop.call_at(loop.now() + _EMFILE_PAUSE, lambda: self._resume(listener))
                return
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = self._new_conn(next(self._ids), client)
            self._conns[conn.id] = conn
            self._stats.connections += 1
            self._stats.open += 1
            self._event(PROXY_CONNECTION, event="open", conn=conn.id, bytes_up=0,
                        bytes_down=0, toxic=None)
            self._connect(conn)

    def _resume(self, listener: socket.socket) -> None:
        if self._server is listener:  # not closed by down()/stop() meanwhile
            self._loop().modify(listener.fileno(), READ)

    def _connect(self, conn: BaseConn) -> None:
        sock = conn.upstream = socket.socket(self._family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        error = sock.connect_ex(self._sockaddr)
        if error in (errno.EINPROGRESS, errno.EAGAIN):
            self._loop().watch(sock.fileno(), lambda _: self._connected(conn), WRITE)
        else:
            self._connected(conn, error)

    def _connected(self, conn: BaseConn, error: int | None = None) -> None:
        sock = conn.upstream
        assert sock is not None
        if error is None:
            self._loop().unwatch(sock.fileno())
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if not error:
            conn.start()
            return
        self._stats.refused += 1
        text = f"{errno.errorcode.get(error, error)}: {os.strerror(error)}"
        if error == errno.ECONNREFUSED and not self._refusing:
            self._refusing = True
            self._close_listener()
            self._event(PROXY_UPSTREAM, state="refused", error=text,
                        detail="the client got a reset; later clients are refused until "
                        "the upstream accepts again")
            self._schedule_probe()
        conn.finish("upstream_refused" if error == errno.ECONNREFUSED else "upstream_error",
                    reset=True, error=text)

    def _closed(self, conn: BaseConn, attrs: dict[str, Any]) -> None:
        self._conns.pop(conn.id, None)
        self._stats.open -= 1
        up, down = conn.sent()
        self._stats.bytes_up += up
        self._stats.bytes_down += down
        self._event(PROXY_CONNECTION, event="close", conn=conn.id, outcome=conn.outcome,
                    **conn.close_attrs(), **attrs)

    # -- probing a refusing upstream -----------------------------------------------------
    def _schedule_probe(self) -> None:
        if isinstance(self.clock, VirtualClock):
            return  # probed on every settle instead (_settle_probe)
        self._probe = self._loop().call_at(self._loop().now() + _PROBE_EVERY, self._run_probe)

    def _run_probe(self) -> None:
        self._probe = None
        if self._refusing and not self._probe_ok():
            self._schedule_probe()

    def _settle_probe(self) -> bool:
        return self._refusing and self._probe_ok()

    def _probe_ok(self) -> bool:
        """Try the upstream; listen again if it accepts. Whether it did."""
        try:
            with socket.create_connection(self._sockaddr[:2], timeout=_PROBE_TIMEOUT):
                pass
        except OSError:
            return False
        self._refusing = False
        if not self._down:
            self._listen()
        self._event(PROXY_UPSTREAM, state="reachable", error=None, detail="listening again")
        return True


class _Down:
    """``proxy.down()``: refuse new connections and drop open ones until exit."""

    def __init__(self, proxy: ProxyBase) -> None:
        self.proxy = proxy

    def __enter__(self) -> Any:
        return self.proxy

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proxy.running:
            self.proxy.up()
