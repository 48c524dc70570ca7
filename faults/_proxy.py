"""The ``FaultProxy`` engine: an asyncio TCP proxy on its own thread, bound to loopback.

Each direction of a connection has one pump. With no toxic on its direction the pump
moves bytes with ``os.splice`` through a pipe (Linux: no copy into Python), otherwise it
reads chunks and applies the toxics; it checks again after every chunk, so toxics added
or removed on an open connection take effect at once. The sockets are plain
non-blocking sockets, watched with the loop's ``add_reader``/``add_writer``.

Every shared decision (toxicity draws, jitter, slice sizes) happens on the proxy's loop
thread, from one seeded ``random.Random``, so a seed replays the same decisions for the
same sequence of connections and toxics.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import math
import os
import random
import socket
import struct
import threading
from collections.abc import Coroutine
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from faults._network_toxics import DIRECTIONS, Direction, Toxic
from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._events import History, emit
from pytest_resilience.kinds import FAULT_FIRED, PROXY_CONNECTION, PROXY_TOXIC

__all__ = ["FaultProxy", "ProxyStats", "ToxicHandle", "down"]

T = TypeVar("T")

_READ = 256 * 1024  # bytes read per chunk on the toxic path
_PIPE_SIZE = 1 << 20  # bytes a splice pipe holds (asked for; the kernel may give less)
_MAX_PIPES = 64  # pipes in the pool; a pump that finds none copies through Python
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux)
_ACCEPTS = 64  # connections accepted per wake-up of the listener
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
class _Flow:
    """One direction of a connection: what ``src`` reads is sent to ``dst``."""

    direction: Direction
    src: socket.socket
    dst: socket.socket


@dataclass(eq=False)
class _Conn:
    id: int
    client: socket.socket
    upstream: socket.socket | None = None
    bytes: dict[str, int] = field(default_factory=lambda: {"upstream": 0, "downstream": 0})
    applied: dict[str, bool] = field(default_factory=dict)
    felt: list[str] = field(default_factory=list)  # every toxic applied, even if removed
    timers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # readiness waits by (fd, write): _finish unregisters them before closing the sockets
    waits: dict[tuple[int, bool], asyncio.Future[None]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: str = "closed"
    ready: bool = False  # connected upstream; toxic decisions made
    done: bool = False


@dataclass(eq=False)
class _Pipe:
    """A pipe that spliced bytes pass through; ``fill`` bytes are in it now."""

    read: int
    write: int
    fill: int = 0

    def close(self) -> None:
        os.close(self.read)
        os.close(self.write)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


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
        self.seed = _validate.count(seed, "seed", low=-(2**63), what="a seed",
                                    accepted="an integer")
        self.clock: Clock = _validate.clock(clock)
        self.history = history
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._toxics: dict[str, _Entry] = {}
        self._conns: set[_Conn] = set()
        self._conn_ids = itertools.count(1)
        self._stats = ProxyStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: socket.socket | None = None
        self._pipes: list[_Pipe] = []  # free splice pipes
        self._pipe_count = 0  # pipes open, free or in use
        self._splice_ok = hasattr(os, "splice")
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
        emit(PROXY_CONNECTION, self.name, self.clock, history=self.history,
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
        emit(PROXY_CONNECTION, self.name, self.clock, history=self.history,
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
        emit(PROXY_TOXIC, self.name, self.clock, history=self.history, event="added",
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
        emit(PROXY_TOXIC, self.name, self.clock, history=self.history, event="removed",
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
            emit(FAULT_FIRED, self.name, self.clock, history=self.history, family="network",
                 action="down",
                 trigger="always", call=0)
            emit(PROXY_TOXIC, self.name, self.clock, history=self.history, event="down",
                 toxic="down", direction="both", toxicity=1.0)
        return _Down(self)

    def up(self) -> None:
        """Listen again on the same port after ``down()``."""
        if not self._down:
            return
        self._call(self._listen(self._port))
        self._down = False
        emit(PROXY_TOXIC, self.name, self.clock, history=self.history, event="up",
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
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((_LOOPBACK, port))
            listener.listen(socket.SOMAXCONN)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)
        self._server = listener
        self._port = listener.getsockname()[1]

    async def _close_all(self, *, outcome: str, listener: bool) -> None:
        if listener and self._server is not None:
            asyncio.get_running_loop().remove_reader(self._server.fileno())
            self._server.close()
            self._server = None
        for conn in list(self._conns):
            self._finish(conn, outcome, reset=outcome == "down")
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._close_pipes()  # every pump has returned its pipe by now

    # -- connections -----------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        for _ in range(_ACCEPTS):
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError:  # out of descriptors or memory: pause a second, as asyncio does
                asyncio.get_running_loop().remove_reader(listener.fileno())
                self._spawn(self._resume_accepting(listener))
                return
            if self._down or self._server is None:  # accepted just before down()/stop()
                self._drop(client)
                continue
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(next(self._conn_ids), client)
            with self._lock:
                self._stats.connections += 1
                self._stats.open += 1
            self._conns.add(conn)
            emit(PROXY_CONNECTION, self.name, self.clock, history=self.history,
                 event="open", conn=conn.id, bytes_up=0, bytes_down=0, toxic=None)
            self._spawn(self._serve(conn))

    async def _resume_accepting(self, listener: socket.socket) -> None:
        await self.clock.asleep(1.0)
        if self._server is listener:  # not closed by down()/stop() meanwhile
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)

    async def _serve(self, conn: _Conn) -> None:
        """Connect upstream, then pump both directions until the connection ends."""
        try:
            try:
                upstream = await self._connect(conn)
            except OSError as exc:
                with self._lock:
                    self._stats.refused += 1
                conn.outcome = f"upstream_error:{type(exc).__name__}"
                return
            if conn.done:  # dropped while connecting
                return
            conn.ready = True
            for entry in self._entries():
                self._decide(conn, entry)
            await asyncio.gather(
                self._pump(conn, _Flow("upstream", conn.client, upstream)),
                self._pump(conn, _Flow("downstream", upstream, conn.client)),
            )
        finally:
            self._finish(conn, conn.outcome, reset=False)

    async def _connect(self, conn: _Conn) -> socket.socket:
        family, kind, proto, _, address = socket.getaddrinfo(
            *self.upstream, type=socket.SOCK_STREAM)[0]
        sock = conn.upstream = socket.socket(family, kind, proto)  # _finish closes it
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        error = sock.connect_ex(address)
        if error == errno.EINPROGRESS:
            await self._wait(conn, sock, write=True)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error and not conn.done:
            raise OSError(error, os.strerror(error))
        return sock

    async def _wait(self, conn: _Conn, sock: socket.socket, *, write: bool) -> bool:
        """Wait until ``sock`` is readable (or writable); ``False`` if ``conn`` finished."""
        loop = asyncio.get_running_loop()
        fd = sock.fileno()
        fut: asyncio.Future[None] = loop.create_future()
        key = (fd, write)
        if write:
            loop.add_writer(fd, _wake, fut)
        else:
            loop.add_reader(fd, _wake, fut)
        conn.waits[key] = fut
        try:
            await fut
        finally:
            if conn.waits.get(key) is fut:  # else _finish has unregistered it
                del conn.waits[key]
                if write:
                    loop.remove_writer(fd)
                else:
                    loop.remove_reader(fd)
        return not conn.done

    def _entries(self) -> list[_Entry]:
        with self._lock:
            return list(self._toxics.values())

    def _active(self, conn: _Conn, direction: Direction) -> list[Toxic]:
        if not conn.applied:  # no toxic decided on this connection: skip the lock
            return []
        return [e.toxic for e in self._entries()
                if e.direction == direction and conn.applied.get(e.name)]

    def _decide(self, conn: _Conn, entry: _Entry) -> None:
        """Draw whether ``conn`` feels ``entry``; start its timer if it has one."""
        if entry.name in conn.applied or conn.done:
            return
        applied = entry.toxicity >= 1.0 or self._rng.random() < entry.toxicity
        conn.applied[entry.name] = applied
        emit(PROXY_TOXIC, self.name, self.clock, history=self.history, event="decided",
             toxic=entry.name, conn=conn.id, direction=entry.direction,
             toxicity=entry.toxicity, applied=applied)
        if not applied:
            return
        conn.felt.append(entry.name)
        with self._lock:
            self._stats.toxics_applied += 1
        emit(FAULT_FIRED, self.name, self.clock, history=self.history, family="network",
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
            if conn.ready:
                self._decide(conn, entry)

    async def _forget(self, name: str) -> None:
        for conn in list(self._conns):
            conn.applied.pop(name, None)
            timer = conn.timers.pop(name, None)
            if timer is not None:
                timer.cancel()
            conn.changed.set()

    # -- moving bytes ------------------------------------------------------------------
    async def _pump(self, conn: _Conn, flow: _Flow) -> None:
        """Forward ``flow`` until its end of stream, then pass the end on."""
        try:
            more = True
            while more and not conn.done:
                if not await self._wait(conn, flow.src, write=False):
                    return
                pipe = None if self._active(conn, flow.direction) else self._take_pipe()
                if pipe is None:
                    more = await self._copy(conn, flow)
                    continue
                try:
                    more = await self._splice(conn, flow, pipe)
                finally:
                    self._give_pipe(pipe)
            await self._end(conn, flow)
        except OSError:  # the peer reset the connection, or a send failed
            if not conn.done:
                self._finish(conn, "reset", reset=True)

    async def _copy(self, conn: _Conn, flow: _Flow) -> bool:
        """Read one chunk and forward it through the toxics; ``False`` at end of stream."""
        try:
            data = flow.src.recv(_READ)
        except BlockingIOError:
            return True
        if data:
            await self._forward(conn, flow, data)
        return bool(data)

    async def _splice(self, conn: _Conn, flow: _Flow, pipe: _Pipe) -> bool:
        """Move what ``src`` has to ``dst`` through ``pipe``; ``False`` at end of stream.

        Returns when ``src`` has nothing more for now, or as soon as a toxic applies to
        the direction, with the pipe empty so that no byte overtakes another.
        """
        src, dst = flow.src.fileno(), flow.dst.fileno()
        while not conn.done:
            try:
                pipe.fill = os.splice(src, pipe.write, _PIPE_SIZE, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                return True
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                    raise
                self._splice_ok = False  # this kernel cannot splice these sockets
                return True
            if not pipe.fill:
                return False
            while pipe.fill and not conn.done:
                try:
                    sent = os.splice(pipe.read, dst, pipe.fill, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    if not await self._wait(conn, flow.dst, write=True):
                        return True
                    continue
                pipe.fill -= sent
                self._count(conn, flow.direction, sent)
            if self._active(conn, flow.direction):
                return True
        return True

    def _take_pipe(self) -> _Pipe | None:
        if not self._splice_ok:
            return None
        if self._pipes:
            return self._pipes.pop()
        if self._pipe_count >= _MAX_PIPES:
            return None
        try:
            read, write = os.pipe()
        except OSError:  # out of descriptors: copy instead
            return None
        with contextlib.suppress(OSError):  # keep the default size if refused
            import fcntl

            fcntl.fcntl(write, _F_SETPIPE_SZ, _PIPE_SIZE)
        self._pipe_count += 1
        return _Pipe(read, write)

    def _give_pipe(self, pipe: _Pipe) -> None:
        if pipe.fill:  # bytes of a finished connection: not reusable
            pipe.close()
            self._pipe_count -= 1
        else:
            self._pipes.append(pipe)

    def _close_pipes(self) -> None:
        while self._pipes:
            self._pipes.pop().close()
            self._pipe_count -= 1

    async def _send(self, conn: _Conn, sock: socket.socket, data: bytes) -> bool:
        """Send all of ``data``; ``False`` if ``conn`` finished first."""
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view):]
            except BlockingIOError:
                if not await self._wait(conn, sock, write=True):
                    return False
        return True

    async def _end(self, conn: _Conn, flow: _Flow) -> None:
        while not conn.done and any(t.kind == "timeout"
                                    for t in self._active(conn, flow.direction)):
            conn.changed.clear()  # the timeout toxic holds the end of stream too
            await conn.changed.wait()
        for toxic in self._active(conn, flow.direction):
            if toxic.kind == "slow_close" and toxic.ms > 0:
                await self.clock.asleep(toxic.ms / 1000)
        if not conn.done:
            with contextlib.suppress(OSError):  # the peer may have closed already
                flow.dst.shutdown(socket.SHUT_WR)

    async def _forward(self, conn: _Conn, flow: _Flow, data: bytes) -> None:
        direction = flow.direction
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
                if not await self._send(conn, flow.dst, piece):
                    return
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
        loop = asyncio.get_running_loop()
        for (fd, write), fut in conn.waits.items():  # before the fds can be reused
            if write:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)
            _wake(fut)
        conn.waits.clear()
        for timer in conn.timers.values():
            if timer is not asyncio.current_task():
                timer.cancel()
        for sock in (conn.client, conn.upstream):
            if sock is None:
                continue
            if reset:
                self._drop(sock)
            else:
                sock.close()
        self._conns.discard(conn)
        with self._lock:
            self._stats.open -= 1
        emit(PROXY_CONNECTION, self.name, self.clock, history=self.history, event="close",
             conn=conn.id, outcome=outcome, bytes_up=conn.bytes["upstream"],
             bytes_down=conn.bytes["downstream"],
             toxic=",".join(conn.felt) or None)

    @staticmethod
    def _drop(sock: socket.socket) -> None:
        """Close with a TCP RST (``SO_LINGER`` 0), as Toxiproxy's ``reset_peer`` does."""
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def __repr__(self) -> str:
        where = f"127.0.0.1:{self._port}" if self._port else "not started"
        return f"<FaultProxy {self.name!r} {where} -> {self.upstream[0]}:{self.upstream[1]}>"


def down(proxy: FaultProxy) -> AbstractContextManager[FaultProxy]:
    """Take ``proxy`` down (refuse new connections, drop open ones) until the block ends.

    Same as ``proxy.down()``: ``with faults.network.down(proxy): ...``.
    """
    return proxy.down()
