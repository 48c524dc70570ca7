"""The ``FaultProxy`` engine: an asyncio TCP proxy on its own thread, bound to loopback.

Every shared decision (toxicity draws, jitter, slice sizes) happens on the proxy's loop
thread, from one seeded ``random.Random``, so a seed replays the same decisions for the
same sequence of connections and toxics.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from faults._network_toxics import DIRECTIONS, Direction, Toxic
from pytest_resilience.clock import Clock, SystemClock
from pytest_resilience.events import History, emit

__all__ = ["FaultProxy", "ProxyStats", "ToxicHandle"]

T = TypeVar("T")

_CHUNK = 256 * 1024  # asyncio reads at most 256 KiB per recv
_LOOPBACK = "127.0.0.1"
_CONTROL_TIMEOUT = 10.0  # seconds a control call waits for the loop thread


@dataclass
class ProxyStats:
    """Counters of a proxy since it started (a snapshot; plain values)."""

    connections: int = 0
    open: int = 0
    refused: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    toxics_applied: int = 0


@dataclass
class _Entry:
    """A toxic installed on the proxy: where, how likely, under which name."""

    name: str
    toxic: Toxic
    direction: Direction
    toxicity: float


@dataclass(eq=False)
class _Conn:
    id: int
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    bytes: dict[str, int] = field(default_factory=lambda: {"upstream": 0, "downstream": 0})
    applied: dict[str, bool] = field(default_factory=dict)
    felt: list[str] = field(default_factory=list)  # every toxic applied, even if removed
    timers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: str = "closed"
    done: bool = False


class ToxicHandle:
    """A toxic installed on a proxy; a context manager whose exit removes it."""

    def __init__(self, proxy: FaultProxy, name: str) -> None:
        self.proxy = proxy
        self.name = name

    def remove(self) -> None:
        """Remove the toxic (open connections stop feeling it); safe to call twice."""
        self.proxy.remove_toxic(self.name, missing_ok=True)

    def __enter__(self) -> ToxicHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<ToxicHandle {self.name!r} on {self.proxy.name!r}>"


class _Down:
    """``proxy.down()``: refuse new connections and drop open ones until exit."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy

    def __enter__(self) -> FaultProxy:
        return self.proxy

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proxy.running:
            self.proxy.up()


class FaultProxy:
    """A TCP proxy on ``127.0.0.1`` (port chosen by the OS) that forwards to ``upstream``.

    Toxics are added per direction with a toxicity (the probability that a connection
    feels it, drawn per connection from ``random.Random(seed)``) and may be added or
    removed while connections are open. Use as a context manager (sync or async), or
    call ``start()``/``stop()``; stopping closes every socket and joins the thread.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        name: str = "proxy",
        seed: int = 0,
        clock: Clock | None = None,
        history: History | None = None,
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
                f"upstream={upstream!r} is not an address. Pass a (host, port) tuple such "
                "as ('127.0.0.1', 8080)."
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"name={name!r} is not a proxy name. Pass a non-empty string.")
        self.upstream = upstream
        self.name = name
        self.seed = int(seed)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.history = history
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._toxics: dict[str, _Entry] = {}
        self._conns: set[_Conn] = set()
        self._conn_ids = itertools.count(1)
        self._stats = ProxyStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._port = 0
        self._down = False

    # -- public state ----------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the proxy's thread is serving."""
        return self._thread is not None

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
    def toxics(self) -> dict[str, tuple[Toxic, Direction, float]]:
        """Installed toxics by name: ``(toxic, direction, toxicity)``."""
        with self._lock:
            return {n: (e.toxic, e.direction, e.toxicity) for n, e in self._toxics.items()}

    def stats(self) -> ProxyStats:
        """A snapshot of the proxy's counters."""
        with self._lock:
            return ProxyStats(**vars(self._stats))

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> FaultProxy:
        """Start the loop thread and listen; returns the proxy."""
        if self._thread is not None:
            raise RuntimeError(f"proxy {self.name!r} is already started.")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(
            target=self._run_loop, args=(loop, ready), name=f"FaultProxy-{self.name}",
            daemon=True,
        )
        thread.start()
        ready.wait(_CONTROL_TIMEOUT)
        self._loop, self._thread = loop, thread
        try:
            self._call(self._listen(0))
        except BaseException:
            self._shutdown_thread()
            raise
        emit("proxy.connection", self.name, self.clock, history=self.history,
             event="listen", port=self._port, upstream=f"{self.upstream[0]}:{self.upstream[1]}",
             seed=self.seed, bytes_up=0, bytes_down=0, toxic=None)
        return self

    def stop(self) -> None:
        """Close the listener and every connection, stop and join the thread. Idempotent."""
        if self._thread is None:
            return
        try:
            self._call(self._close_all(outcome="stopped", listener=True))
        finally:
            self._shutdown_thread()
        stats = self.stats()
        emit("proxy.connection", self.name, self.clock, history=self.history,
             event="stop", connections=stats.connections, bytes_up=stats.bytes_up,
             bytes_down=stats.bytes_down, toxic=None)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> FaultProxy:
        return self.start()  # blocks the caller's loop for a moment only

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    # -- toxics ----------------------------------------------------------------------
    def add_toxic(
        self,
        toxic: Toxic,
        *,
        direction: Direction = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> ToxicHandle:
        """Install ``toxic`` on ``direction``; open connections feel it at once.

        Each connection (open now or later) feels it with probability ``toxicity``,
        drawn once per connection from the proxy's seeded RNG. Returns a handle whose
        ``with`` block (or ``.remove()``) removes the toxic.
        """
        if not isinstance(toxic, Toxic):
            raise TypeError(
                f"toxic={toxic!r} is not a Toxic. Build one with faults.network.latency(), "
                "timeout(), reset_peer(), ..."
            )
        if direction not in DIRECTIONS:
            raise ValueError(
                f"direction={direction!r} is not a direction. Pass 'upstream' "
                "(client to server) or 'downstream' (server to client)."
            )
        p = float(toxicity)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"toxicity={toxicity!r} is not a probability. Pass a number in "
                             "[0, 1].")
        toxic_name = name if name is not None else f"{toxic.kind}_{direction}"
        entry = _Entry(toxic_name, toxic, direction, p)
        with self._lock:
            if toxic_name in self._toxics:
                raise ValueError(
                    f"name={toxic_name!r} is already installed on proxy {self.name!r}. Pass "
                    "another name= or remove the existing toxic first."
                )
            self._toxics[toxic_name] = entry
        emit("proxy.toxic", self.name, self.clock, history=self.history, event="added",
             toxic=toxic_name, toxic_kind=toxic.kind, params=str(toxic), direction=direction,
             toxicity=p)
        if self._loop is not None:
            self._call(self._apply_to_open(entry))
        return ToxicHandle(self, toxic_name)

    def remove_toxic(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove the toxic called ``name``; open connections stop feeling it at once."""
        with self._lock:
            entry = self._toxics.pop(name, None)
        if entry is None:
            if missing_ok:
                return
            raise KeyError(f"no toxic named {name!r} on proxy {self.name!r}; installed: "
                           f"{sorted(self.toxics)}.")
        emit("proxy.toxic", self.name, self.clock, history=self.history, event="removed",
             toxic=name, toxic_kind=entry.toxic.kind, direction=entry.direction,
             toxicity=entry.toxicity)
        if self._loop is not None:
            self._call(self._forget(name))

    def reset(self) -> None:
        """Remove every toxic (Toxiproxy's ``POST /reset``) and bring the proxy up."""
        for name in list(self.toxics):
            self.remove_toxic(name, missing_ok=True)
        if self._down and self.running:
            self.up()

    def down(self) -> _Down:
        """Refuse new connections and drop the open ones; ``with proxy.down():`` undoes it."""
        if self._thread is None:
            raise RuntimeError(f"proxy {self.name!r} is not started; call start() first.")
        if not self._down:
            self._down = True
            self._call(self._close_all(outcome="down", listener=True))
            emit("fault.fired", self.name, self.clock, history=self.history, action="down",
                 trigger="always", call=0)
            emit("proxy.toxic", self.name, self.clock, history=self.history, event="down",
                 toxic="down", direction="both", toxicity=1.0)
        return _Down(self)

    def up(self) -> None:
        """Listen again on the same port after ``down()``."""
        if not self._down:
            return
        self._call(self._listen(self._port))
        self._down = False
        emit("proxy.toxic", self.name, self.clock, history=self.history, event="up",
             toxic="down", direction="both", toxicity=1.0)

    # -- loop thread plumbing --------------------------------------------------------
    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError(f"proxy {self.name!r} is not started; call start() first.")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(_CONTROL_TIMEOUT)

    def _shutdown_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CONTROL_TIMEOUT)
            loop.close()
        self._loop = self._thread = None
        self._server = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(
            self._on_client, _LOOPBACK, port, reuse_address=True, limit=_CHUNK
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close_all(self, *, outcome: str, listener: bool) -> None:
        if listener and self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._conns):
            self._finish(conn, outcome, reset=outcome == "down")
            for writer in (conn.client, conn.upstream):
                if writer is not None:
                    writer.transport.abort()  # close now, not after a pending flush
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0)  # let the transports' connection_lost callbacks run

    # -- connections -----------------------------------------------------------------
    async def _on_client(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        if self._down or self._server is None:  # accepted just before down()/stop()
            self._drop(writer)
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        conn = _Conn(next(self._conn_ids), writer)
        with self._lock:
            self._stats.connections += 1
            self._stats.open += 1
        self._conns.add(conn)
        emit("proxy.connection", self.name, self.clock, history=self.history, event="open",
             conn=conn.id, bytes_up=0, bytes_down=0, toxic=None)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    *self.upstream, limit=_CHUNK)
            except OSError as exc:
                with self._lock:
                    self._stats.refused += 1
                conn.outcome = f"upstream_error:{type(exc).__name__}"
                return
            conn.upstream = up_writer
            for entry in self._entries():
                self._decide(conn, entry)
            await asyncio.gather(
                self._pump(conn, "upstream", reader, up_writer),
                self._pump(conn, "downstream", up_reader, writer),
            )
        except (ConnectionError, OSError):
            conn.outcome = "reset"
        finally:
            self._finish(conn, conn.outcome, reset=conn.outcome == "reset")

    def _entries(self) -> list[_Entry]:
        with self._lock:
            return list(self._toxics.values())

    def _active(self, conn: _Conn, direction: Direction) -> list[Toxic]:
        return [e.toxic for e in self._entries()
                if e.direction == direction and conn.applied.get(e.name)]

    def _decide(self, conn: _Conn, entry: _Entry) -> None:
        """Draw whether ``conn`` feels ``entry``; start its timer if it has one."""
        if entry.name in conn.applied or conn.done:
            return
        applied = entry.toxicity >= 1.0 or self._rng.random() < entry.toxicity
        conn.applied[entry.name] = applied
        emit("proxy.toxic", self.name, self.clock, history=self.history, event="decided",
             toxic=entry.name, conn=conn.id, direction=entry.direction,
             toxicity=entry.toxicity, applied=applied)
        if not applied:
            return
        conn.felt.append(entry.name)
        with self._lock:
            self._stats.toxics_applied += 1
        emit("fault.fired", self.name, self.clock, history=self.history,
             action=str(entry.toxic), trigger=f"toxicity({entry.toxicity:g})", call=conn.id,
             toxic=entry.name, direction=entry.direction)
        kind = entry.toxic.kind
        if kind == "reset_peer" or (kind == "timeout" and entry.toxic.ms > 0):
            conn.timers[entry.name] = self._spawn(self._timer(conn, entry))

    async def _timer(self, conn: _Conn, entry: _Entry) -> None:
        if entry.toxic.ms > 0:
            await self.clock.asleep(entry.toxic.ms / 1000)
        if entry.toxic.kind == "reset_peer":
            self._finish(conn, "reset_peer", reset=True)
        else:
            self._finish(conn, "timeout", reset=False)

    async def _apply_to_open(self, entry: _Entry) -> None:
        for conn in list(self._conns):
            if conn.upstream is not None:
                self._decide(conn, entry)

    async def _forget(self, name: str) -> None:
        for conn in list(self._conns):
            conn.applied.pop(name, None)
            timer = conn.timers.pop(name, None)
            if timer is not None:
                timer.cancel()
            conn.changed.set()

    async def _pump(self, conn: _Conn, direction: Direction, src: asyncio.StreamReader,
                    dst: asyncio.StreamWriter) -> None:
        while not conn.done:
            data = await src.read(_CHUNK)
            if not data:
                break
            await self._forward(conn, direction, data, dst)
        while not conn.done and any(t.kind == "timeout" for t in self._active(conn, direction)):
            conn.changed.clear()  # the timeout toxic holds the end of stream too
            await conn.changed.wait()
        for toxic in self._active(conn, direction):
            if toxic.kind == "slow_close" and toxic.ms > 0:
                await self.clock.asleep(toxic.ms / 1000)
        if not conn.done and dst.can_write_eof() and not dst.is_closing():
            with contextlib.suppress(OSError):
                dst.write_eof()

    async def _forward(self, conn: _Conn, direction: Direction, data: bytes,
                       dst: asyncio.StreamWriter) -> None:
        toxics = self._active(conn, direction)
        if any(t.kind == "timeout" for t in toxics):
            return  # dropped while the timeout toxic holds the connection
        pieces = [data]
        delays: list[float] = []
        for toxic in toxics:
            if toxic.kind == "latency":
                jitter = self._rng.uniform(-toxic.jitter_ms, toxic.jitter_ms)
                delays.append(max(0.0, toxic.ms + jitter) / 1000)
            elif toxic.kind == "slicer":
                pieces = [p for chunk in pieces for p in self._slices(chunk, toxic)]
        if delays:
            await self.clock.asleep(sum(delays))
        slice_delay = max((t.ms for t in toxics if t.kind == "slicer"), default=0.0) / 1000
        rate = min((t.kb_per_s for t in toxics if t.kind == "bandwidth"), default=math.inf)
        limit = min((t.limit for t in toxics if t.kind == "limit_data"), default=None)
        for index, chunk in enumerate(pieces):
            if conn.done:
                return
            piece = chunk if limit is None else chunk[:max(limit - conn.bytes[direction], 0)]
            if piece:
                dst.write(piece)
                await dst.drain()
                self._count(conn, direction, len(piece))
            if limit is not None and conn.bytes[direction] >= limit:
                self._finish(conn, "limit_data", reset=False)
                return
            if rate != math.inf:
                await self.clock.asleep(len(piece) / (rate * 1024))
            if slice_delay and index < len(pieces) - 1:
                await self.clock.asleep(slice_delay)

    def _slices(self, data: bytes, toxic: Toxic) -> list[bytes]:
        out: list[bytes] = []
        start = 0
        while start < len(data):
            size = toxic.avg_size
            if toxic.size_variation:
                size += self._rng.randint(-toxic.size_variation, toxic.size_variation)
            out.append(data[start:start + size])
            start += size
        return out

    def _count(self, conn: _Conn, direction: Direction, n: int) -> None:
        conn.bytes[direction] += n
        with self._lock:
            if direction == "upstream":
                self._stats.bytes_up += n
            else:
                self._stats.bytes_down += n

    def _finish(self, conn: _Conn, outcome: str, *, reset: bool) -> None:
        """Close both sides of ``conn`` once (with RST when ``reset``) and record it."""
        if conn.done:
            return
        conn.done = True
        conn.outcome = outcome
        conn.changed.set()
        for timer in conn.timers.values():
            if timer is not asyncio.current_task():
                timer.cancel()
        for writer in (conn.client, conn.upstream):
            if writer is None:
                continue
            if reset:
                self._drop(writer)
            else:
                writer.close()
        self._conns.discard(conn)
        with self._lock:
            self._stats.open -= 1
        emit("proxy.connection", self.name, self.clock, history=self.history, event="close",
             conn=conn.id, outcome=outcome, bytes_up=conn.bytes["upstream"],
             bytes_down=conn.bytes["downstream"],
             toxic=",".join(conn.felt) or None)

    @staticmethod
    def _drop(writer: asyncio.StreamWriter) -> None:
        """Close with a TCP RST (``SO_LINGER`` 0), as Toxiproxy's ``reset_peer`` does."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    def __repr__(self) -> str:
        where = f"127.0.0.1:{self._port}" if self._port else "not started"
        return f"<FaultProxy {self.name!r} {where} -> {self.upstream[0]}:{self.upstream[1]}>"
