"""``FaultProxy``: a loopback TCP proxy that applies Toxiproxy's toxics per direction.

Each connection's two sockets are registered with the loop once, for as long as the
connection lives. A direction with no toxic moves bulk with two ``os.splice`` calls per
chunk through a pooled pipe (no copy into Python; the second call's own EAGAIN says
the destination is full, then the source is paused and the destination watched until
it drains) where the process has more than two CPUs, and by copying up to 1 MiB at a
time (``recv_into``/``send``) where it has two or fewer or splice is missing (see
``_splices``). A read under 16 KiB (a request, a reply: after one, the next read is
copied too) is always copied: for one small message that is the cheaper path, in the
kernel and in Python. A direction with toxics
reads chunks, runs them through its chain of stages (``faults._toxic_stages``) and
delivers each at its due time. Toxics added or removed on an open connection take
effect at once.

Every shared decision (toxicity, jitter, slice sizes) comes from the proxy's seeded
``random.Random``, drawn on the loop in the order connections and chunks arrive.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import random
import select
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faults._loop import READ, WRITE, Timer
from faults._network_toxics import DIRECTIONS, Direction, Toxic
from faults._proxy_base import BaseConn, ProxyBase, ProxyStats
from faults._toxic_stages import DATA, EOF, Item, Stage, make_stage
from pytest_resilience import Clock, History
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED, PROXY_TOXIC

__all__ = ["FaultProxy", "ProxyStats", "ToxicHandle", "down"]

_CHUNK = 32 * 1024  # bytes read per chunk on a toxic direction (Go's io.Copy buffer)
_COPY = 1 << 20  # bytes per recv_into where splice is not used
_PIPE_SIZE = 1 << 20  # bytes a splice pipe holds (asked for; the kernel may give less)
_MAX_PIPES = 64  # pipes in the pool; a direction that finds none copies through Python
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux)
_QUEUE_LIMIT = 4 << 20  # bytes a toxic direction holds before it stops reading
_SMALL = 16 * 1024  # bytes: a read under this copies the next one (fewer kernel steps)
_SPINS = 4  # full pipes moved per wake-up before the loop looks at other sockets
_SPLICE_MIN_CPUS = 3  # bulk is spliced only where the process may use this many CPUs
_ERRORS = select.POLLERR | select.POLLHUP
_READY = READ | _ERRORS
_EPS = 1e-9


def _splices() -> bool:
    """Whether a new proxy splices bulk: where ``os.splice`` exists and the process may
    run on at least ``_SPLICE_MIN_CPUS`` CPUs. With cores to spare the proxy must not be
    the slowest of the three parties (client, proxy, upstream), and splicing spares it
    both copies (0.97x direct loopback on an idle 16-core machine). On two cores the
    three share them and the total work decides: copying 1 MiB at a time measured
    0.95-1.08x a naive thread-per-direction relay's throughput, splicing 0.84-0.93x
    (``benchmarks/test_bench_proxy.py``)."""
    if not hasattr(os, "splice"):
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity here: every CPU
        cpus = os.cpu_count() or 1
    return cpus >= _SPLICE_MIN_CPUS


@dataclass
class _Entry:
    """A toxic installed on the proxy: where, how likely, under which name."""

    name: str
    toxic: Toxic
    direction: Direction
    toxicity: float


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

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<ToxicHandle {self.name!r} on {self.proxy.name!r}>"


class _Pipe:
    """A pipe that spliced bytes pass through; ``fill`` bytes are in it now."""

    __slots__ = ("fill", "read", "write")

    def __init__(self, read: int, write: int) -> None:
        self.read, self.write, self.fill = read, write, 0

    def close(self) -> None:
        os.close(self.read)
        os.close(self.write)


class _Flow:
    """One direction of a connection: what ``src`` reads goes to ``dst``."""

    __slots__ = ("blocked", "closed", "conn", "direction", "dst", "dst_fd", "eof", "outbox",
                 "pending", "pipe", "queued", "reading", "sent", "small", "src", "src_fd",
                 "stages", "timer")

    def __init__(self, conn: _Conn, direction: Direction, src: socket.socket,
                 dst: socket.socket) -> None:
        self.conn = conn
        self.direction = direction
        self.src, self.dst = src, dst
        self.src_fd, self.dst_fd = src.fileno(), dst.fileno()
        self.stages: list[Stage] = []
        self.outbox: deque[Item] = deque()
        self.queued = 0  # bytes in the outbox
        self.pipe: _Pipe | None = None  # spliced bytes waiting for dst
        self.pending = memoryview(b"")  # copied bytes waiting for dst
        self.reading = True  # src is watched for data
        self.blocked = False  # dst is watched for room
        self.eof = False  # src has ended
        self.closed = False  # the end has been passed to dst
        self.timer: Timer | None = None
        self.sent = 0  # bytes delivered to dst
        self.small = True  # the last read was small: copy the next (splice: bulk)

    # -- reading ---------------------------------------------------------------------
    def readable(self) -> None:
        """``src`` has bytes or its end: a toxic direction reads a chunk for its chain;
        else bulk is spliced, and a small read (a request, a reply) is copied here, at
        once: fewer steps in the kernel and in Python on every message's path."""
        if self.stages or self.outbox:
            self._read_chunk()
        elif not self.small and self.conn.proxy._splice_ok:
            self._splice()
        else:
            self._copy()

    def _splice(self) -> None:
        proxy = self.conn.proxy
        pipes = proxy._pipes
        for _ in range(_SPINS):
            pipe = pipes.pop() if pipes else proxy._new_pipe()
            if pipe is None:
                self._copy()
                return
            try:
                moved = os.splice(self.src_fd, pipe.write, _PIPE_SIZE, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                pipes.append(pipe)
                return
            except OSError as exc:
                pipes.append(pipe)
                if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                    raise
                proxy._splice_ok = False  # this kernel cannot splice these sockets
                self._copy()
                return
            if not moved:
                pipes.append(pipe)
                self._end()
                return
            try:  # the destination's own EAGAIN says it is full: no extra call to ask
                sent = os.splice(pipe.read, self.dst_fd, moved, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                sent = 0
            self.sent += sent
            if sent < moved:
                pipe.fill = moved - sent
                self.pipe = pipe
                self._block()
                return
            pipes.append(pipe)
            if moved < _PIPE_SIZE or self.conn.done:
                self.small = moved < _SMALL
                return

    def _copy(self) -> None:
        view = self.conn.proxy._view
        try:
            n = self.src.recv_into(view)
        except BlockingIOError:
            return
        if not n:
            self._end()
            return
        try:
            sent = self.dst.send(view[:n])
        except BlockingIOError:
            sent = 0
        self.sent += sent
        self.small = n < _SMALL
        if sent < n:
            self.pending = memoryview(bytes(view[sent:n]))
            self._block()

    def _read_chunk(self) -> None:
        try:
            data = self.src.recv(_CHUNK)
        except BlockingIOError:
            return
        if not data:
            self._end()
            return
        self._enter([Item(self.conn.proxy.loop_now(), DATA, data)])

    def _end(self) -> None:
        """``src`` ended: stop reading it and pass the end through the chain."""
        self.eof = True
        self.reading = False
        self.conn.update()
        self._enter([Item(self.conn.proxy.loop_now(), EOF)])

    def _enter(self, items: list[Item]) -> None:
        for stage in self.stages:
            items = stage.feed(items)
        self.outbox.extend(items)
        self.queued += sum(len(i.data) for i in items)
        if self.queued > _QUEUE_LIMIT and self.reading:
            self.reading = False
            self.conn.update()
        self.drain()

    # -- writing ---------------------------------------------------------------------
    def _flush_pipe(self, pipe: _Pipe) -> bool:
        """Splice what ``pipe`` holds to dst; whether it all went (else wait for room)."""
        try:
            sent = os.splice(pipe.read, self.dst_fd, pipe.fill, flags=_SPLICE_FLAGS)
        except BlockingIOError:
            sent = 0
        pipe.fill -= sent
        self.sent += sent
        if pipe.fill:
            self.pipe = pipe
            self._block()
            return False
        self.pipe = None
        self.conn.proxy._pipes.append(pipe)
        return True

    def _block(self) -> None:
        self.blocked = True
        self.reading = False
        self.conn.update()

    def writable(self) -> None:
        if self.pipe is not None and not self._flush_pipe(self.pipe):
            return
        if self.pending:
            try:
                sent = self.dst.send(self.pending)
            except BlockingIOError:
                sent = 0
            self.sent += sent
            self.pending = self.pending[sent:]
            if self.pending:
                return
        self.blocked = False
        if self.outbox:
            self.drain()
            return
        self._resume()

    def _resume(self) -> None:
        if not self.blocked and not self.eof and self.queued <= _QUEUE_LIMIT // 2:
            self.reading = True
        self.conn.update()

    def drain(self) -> None:
        """Deliver every item now due, in order; wait for room or for the next due time."""
        if self.pipe is not None or self.pending or self.conn.done:
            return
        try:
            self._deliver()
        except OSError:  # the destination went away
            self.conn.finish("reset", reset=True)

    def _deliver(self) -> None:
        outbox = self.outbox
        now = self.conn.proxy.loop_now()
        while outbox:
            item = outbox[0]
            if item.due > now + _EPS:
                self._wake_at(item.due)
                break
            if item.kind == DATA:
                try:
                    sent = self.dst.send(item.data)
                except BlockingIOError:
                    sent = 0
                self.sent += sent
                self.queued -= sent
                if sent < len(item.data):
                    item.data = item.data[sent:]
                    self._block()
                    return
                outbox.popleft()
            elif item.kind == EOF:
                outbox.popleft()
                self._close_dst()
                return
            else:  # CLOSE: limit_data reached
                self.conn.finish("limit_data")
                return
        self._resume()

    def _wake_at(self, due: float) -> None:
        if self.timer is not None:
            if self.timer.when == due:
                return
            self.timer.cancel()
        loop = self.conn.proxy._loop()
        self.timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        self.drain()

    def _close_dst(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):  # the peer may have gone already
            self.dst.shutdown(socket.SHUT_WR)
        self.conn.update()
        self.conn.check_done()

    # -- toxics ----------------------------------------------------------------------
    def add_stage(self, stage: Stage) -> None:
        """Append ``stage`` to the chain; what waits in the outbox goes through it too."""
        self.stages.append(stage)
        if self.outbox:
            items = stage.feed(list(self.outbox))
            self.outbox = deque(items)
            self.queued = sum(len(i.data) for i in items)
            self.drain()

    def remove_stage(self, name: str) -> None:
        """Drop stage ``name``; what only it held is released now (Toxiproxy's flush)."""
        self.stages = [s for s in self.stages if s.name != name]
        now = self.conn.proxy.loop_now()
        floor = -math.inf
        for item in self.outbox:
            if name in item.holders:
                item.holders = tuple(h for h in item.holders if h != name)
                if not item.holders:
                    item.due = now
            item.due = floor = max(floor, item.due)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.drain()


class _Conn(BaseConn):
    """A client connection through a ``FaultProxy``: two flows and the toxics it felt."""

    proxy: FaultProxy

    def __init__(self, proxy: FaultProxy, conn_id: int, client: socket.socket) -> None:
        super().__init__(proxy, conn_id, client)
        self.applied: dict[str, bool] = {}
        self.felt: list[str] = []  # every toxic applied, even if removed since
        self.flows: dict[str, _Flow] = {}
        self._masks: dict[int, int] = {}

    @property
    def rng(self) -> random.Random:
        """The proxy's seeded RNG (for the toxics' draws)."""
        return self.proxy.rng

    def start(self) -> None:
        assert self.upstream is not None
        up = _Flow(self, "upstream", self.client, self.upstream)
        down = _Flow(self, "downstream", self.upstream, self.client)
        self.flows = {"upstream": up, "downstream": down}
        loop = self.proxy._loop()
        for sock, reader, writer in ((self.client, up, down), (self.upstream, down, up)):
            self._masks[sock.fileno()] = READ
            loop.watch(sock.fileno(), self._handler(sock, reader, writer), READ)
        for entry in list(self.proxy._toxics.values()):
            self.proxy._decide(self, entry)

    def _handler(self, sock: socket.socket, reader: _Flow,
                 writer: _Flow) -> Callable[[int], None]:
        """What the loop calls when ``sock`` is ready: it is ``reader``'s source and
        ``writer``'s destination."""
        def handle(events: int) -> None:
            try:
                if events & WRITE and writer.blocked:
                    writer.writable()
                if events & _READY and not self.done:
                    if reader.reading:
                        reader.readable()
                    elif events & _ERRORS:
                        self._hangup(sock)
            except OSError:  # the peer reset the connection, or a send failed
                if not self.done:
                    self.finish("reset", reset=True)

        return handle

    def _hangup(self, sock: socket.socket) -> None:
        """``sock`` hung up while not read: a reset, or both ends closed (we passed our
        end on, it passed its end): stop watching it, the other direction may still
        hold bytes for the other socket."""
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.finish("reset", reset=True)
            return
        self._masks[sock.fileno()] = -1
        self.proxy._loop().unwatch(sock.fileno())
        self.check_done()

    def update(self) -> None:
        """Tell the loop what each socket waits for now."""
        if self.done:
            return
        up, down = self.flows["upstream"], self.flows["downstream"]
        loop = self.proxy._loop()
        for fd, mask in ((up.src_fd, (READ if up.reading else 0) | (WRITE if down.blocked
                                                                      else 0)),
                         (down.src_fd, (READ if down.reading else 0) | (WRITE if up.blocked
                                                                         else 0))):
            if self._masks.get(fd) not in (mask, -1):  # -1: no longer watched
                self._masks[fd] = mask
                loop.modify(fd, mask)

    def check_done(self) -> None:
        if all(f.closed for f in self.flows.values()):
            self.finish("closed")

    def at(self, name: str, when: float, action: str) -> None:
        """A toxic's timed close or reset of the whole connection."""
        def fire() -> None:
            self.timers.pop(name, None)
            self.finish("reset_peer" if action == "reset" else "timeout",
                        reset=action == "reset")

        self.timers[name] = self.proxy._loop().call_at(when, fire)

    def release(self) -> None:
        for flow in self.flows.values():
            if flow.timer is not None:
                flow.timer.cancel()
            if flow.pipe is not None:  # bytes of a finished connection: not reusable
                flow.pipe.close()
                flow.pipe = None
                self.proxy._pipe_count -= 1

    def close_attrs(self) -> dict[str, Any]:
        up, down = self.sent()
        return {"bytes_up": up, "bytes_down": down, "toxic": ",".join(self.felt) or None}

    def sent(self) -> tuple[int, int]:
        """Bytes delivered upstream and downstream so far."""
        if not self.flows:
            return 0, 0
        return self.flows["upstream"].sent, self.flows["downstream"].sent


class FaultProxy(ProxyBase):
    """A TCP proxy on ``127.0.0.1`` (port chosen by the OS) that forwards to ``upstream``.

    Toxics are added per direction with a toxicity (the probability that a connection
    feels it, drawn per connection from ``random.Random(seed)``) and may be added or
    removed while connections are open. Use as a context manager (sync or async), or
    call ``start()``/``stop()``; stopping closes every socket and joins the thread.

    On a ``VirtualClock`` toxics wait in virtual time, driven by the test's thread
    (see ``faults._loop``): the same test gives the same history, event for event.
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
        super().__init__(upstream, name=name, seed=seed, clock=clock, history=history)
        self._toxics: dict[str, _Entry] = {}
        self._pipes: list[_Pipe] = []  # free splice pipes
        self._pipe_count = 0  # pipes open, free or in use
        self._splice_ok = _splices()
        self._view = memoryview(bytearray(_COPY))  # what _copy reads into

    def start(self) -> FaultProxy:
        """Start serving; returns the proxy."""
        result: FaultProxy = super().start()
        return result

    def __enter__(self) -> FaultProxy:
        return self.start()

    async def __aenter__(self) -> FaultProxy:
        return self.start()

    @property
    def toxics(self) -> dict[str, tuple[Toxic, Direction, float]]:
        """Installed toxics by name: ``(toxic, direction, toxicity)``."""
        return self._locked(lambda: {n: (e.toxic, e.direction, e.toxicity)
                                     for n, e in self._toxics.items()})

    def loop_now(self) -> float:
        """The proxy clock's time (read from the loop)."""
        return self._loop().now()

    # -- toxics ------------------------------------------------------------------------
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
        if self._locked(lambda: toxic_name in self._toxics):
            raise ValueError(
                f"name={toxic_name!r} is already installed on proxy {self.name!r}. Pass "
                "another name= or remove the existing toxic first."
            )
        entry = _Entry(toxic_name, toxic, direction, p)
        self._event(FAULT_ARMED, family="network", fault=toxic_name, action=str(toxic),
                    direction=direction, toxicity=p)
        self._event(PROXY_TOXIC, event="added", toxic=toxic_name, toxic_kind=toxic.kind,
                    params=str(toxic), direction=direction, toxicity=p)
        self._locked(lambda: self._install(entry))
        return ToxicHandle(self, toxic_name)

    def remove_toxic(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove the toxic called ``name``; open connections stop feeling it at once."""
        entry = self._locked(lambda: self._uninstall(name))
        if entry is None:
            if missing_ok:
                return
            raise KeyError(f"no toxic named {name!r} on proxy {self.name!r}; installed: "
                           f"{sorted(self.toxics)}.")
        self._event(PROXY_TOXIC, event="removed", toxic=name, toxic_kind=entry.toxic.kind,
                    direction=entry.direction, toxicity=entry.toxicity)
        self._event(FAULT_DISARMED, family="network", fault=name, action=str(entry.toxic),
                    direction=entry.direction)

    def reset(self) -> None:
        """Remove every toxic (Toxiproxy's ``POST /reset``) and bring the proxy up."""
        for name in list(self._toxics):
            self.remove_toxic(name, missing_ok=True)
        if self._down and self.running:
            self.up()

    # -- mutex held ------------------------------------------------------------------------
    def _new_conn(self, conn_id: int, client: socket.socket) -> BaseConn:
        return _Conn(self, conn_id, client)

    def _install(self, entry: _Entry) -> None:
        self._toxics[entry.name] = entry
        for conn in list(self._conns.values()):
            if isinstance(conn, _Conn) and conn.flows and not conn.done:
                self._decide(conn, entry)

    def _uninstall(self, name: str) -> _Entry | None:
        entry = self._toxics.pop(name, None)
        if entry is None:
            return None
        for conn in list(self._conns.values()):
            if not isinstance(conn, _Conn) or not conn.applied.pop(name, False):
                continue
            if entry.toxic.kind != "reset_peer":  # once armed, reset_peer.go waits it out
                timer = conn.timers.pop(name, None)
                if timer is not None:
                    timer.cancel()
            if entry.toxic.kind == "timeout":  # Toxiproxy closes what it held
                conn.finish("timeout")
                continue
            conn.flows[entry.direction].remove_stage(name)
        return entry

    def _decide(self, conn: _Conn, entry: _Entry) -> None:
        """Draw whether ``conn`` feels ``entry``; if so, add the toxic's stage."""
        if entry.name in conn.applied or conn.done:
            return
        applied = entry.toxicity >= 1.0 or self.rng.random() < entry.toxicity
        conn.applied[entry.name] = applied
        self._event(PROXY_TOXIC, event="decided", toxic=entry.name, conn=conn.id,
                    direction=entry.direction, toxicity=entry.toxicity, applied=applied)
        if not applied:
            return
        conn.felt.append(entry.name)
        self._stats.toxics_applied += 1
        self._event(FAULT_FIRED, family="network", fault=entry.name, action=str(entry.toxic),
                    trigger=f"toxicity({entry.toxicity:g})", call=conn.id, toxic=entry.name,
                    direction=entry.direction)
        stage = make_stage(entry.name, entry.toxic, conn, self.loop_now())
        conn.flows[entry.direction].add_stage(stage)

    def _new_pipe(self) -> _Pipe | None:
        if not self._splice_ok:
            return None
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

    def _stopped(self) -> None:
        while self._pipes:
            self._pipes.pop().close()
            self._pipe_count -= 1

    def __repr__(self) -> str:
        where = f"127.0.0.1:{self._port}" if self._port else "not started"
        return f"<FaultProxy {self.name!r} {where} -> {self.upstream[0]}:{self.upstream[1]}>"


def down(proxy: ProxyBase) -> Any:
    """Take ``proxy`` down (refuse new connections, drop open ones) until the block ends.

    Same as ``proxy.down()``: ``with faults.network.down(proxy): ...``.
    """
    return proxy.down()
