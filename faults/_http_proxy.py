"""``HttpFaultProxy``: an HTTP/1.1 proxy on loopback that injects ``HttpFault``s.

Each client connection gets its own upstream connection (opened when the client
arrives, refused like the upstream, see ``faults._proxy_base``). Both sides speak
HTTP/1.1 through h11 (the sans-I/O parser httpx is built on), so keep-alive, pipelined
requests, chunked bodies, ``HEAD`` and ``Connection: close`` behave as the client and
the upstream expect. Requests are served one at a time per connection, in order.

Per request, every installed fault whose selector matches (path glob, method) fires
if its ``times`` budget is not spent and the proxy's seeded RNG says so (``rate``);
delays add up and hold the request, an abort answers instead of the upstream, and the
response faults (drop a header, replace or truncate the body) act on the upstream's
answer. Every request writes ``http.request`` and every firing ``fault.fired``.
"""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from faults._http_faults import HttpFault, Selector, _phrase
from faults._loop import READ, WRITE, Timer
from faults._proxy_base import BaseConn, ProxyBase
from pytest_resilience import Clock, History, validate
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED, HTTP_REQUEST

if TYPE_CHECKING:
    import h11

__all__ = ["FaultHandle", "HttpFaultProxy"]

_RECV = 64 * 1024
_OUT_LIMIT = 4 << 20  # bytes waiting for a slow peer before the other side stops reading
_RESPONSE_FAULTS = ("replace_body", "truncate_body", "drop_header")
_ERRORS = select.POLLERR | select.POLLHUP


def _h11() -> Any:
    try:
        import h11
    except ImportError:  # pragma: no cover - h11 ships with the http extra
        raise ImportError("faults.http needs h11. Install it with "
                          "`pip install pytest-resilience[http]`.") from None
    return h11


@dataclass
class _Installed:
    name: str
    fault: HttpFault
    selector: Selector
    fired: int = 0


class FaultHandle:
    """A fault installed on an ``HttpFaultProxy``; a context manager whose exit removes it."""

    def __init__(self, proxy: HttpFaultProxy, name: str) -> None:
        self.proxy = proxy
        self.name = name

    @property
    def fired(self) -> int:
        """How many requests it acted on so far (in this run)."""
        installed = self.proxy._faults.get(self.name)
        return installed.fired if installed is not None else 0

    def remove(self) -> None:
        """Remove the fault; safe to call twice."""
        self.proxy.remove_fault(self.name, missing_ok=True)

    def __enter__(self) -> FaultHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<FaultHandle {self.name!r} on {self.proxy.name!r}>"


@dataclass(eq=False)
class _Request:
    n: int
    method: str
    path: str
    started: float
    fired: list[str]
    abort: HttpFault | None = None
    response_faults: list[HttpFault] = field(default_factory=list)
    held: list[Any] | None = None  # events waiting for the delay to pass
    timer: Timer | None = None
    status: int | None = None
    outcome: str = "ok"
    body: bytearray | None = None  # the upstream's body, when it is replaced
    head: Any = None  # the upstream's response, when its body is replaced
    left: int | None = None  # body bytes still to send, when truncated
    logged: bool = False


class _HttpConn(BaseConn):
    proxy: HttpFaultProxy

    def __init__(self, proxy: HttpFaultProxy, conn_id: int, client: socket.socket) -> None:
        super().__init__(proxy, conn_id, client)
        self.h11: Any = _h11()
        self.server: h11.Connection = self.h11.Connection(self.h11.SERVER)
        self.up: h11.Connection = self.h11.Connection(self.h11.CLIENT)
        self.out: dict[int, bytearray] = {}
        self.req: _Request | None = None
        self.client_eof = False
        self.closing: str | None = None  # outcome once the client has all we wrote
        self.requests = 0
        self._masks: dict[int, int] = {}
        self._reading_requests = False

    # -- plumbing --------------------------------------------------------------------------
    def start(self) -> None:
        assert self.upstream is not None
        loop = self.proxy._loop()
        for sock, handler in ((self.client, self._on_client), (self.upstream, self._on_up)):
            self.out[sock.fileno()] = bytearray()
            self._masks[sock.fileno()] = READ
            loop.watch(sock.fileno(), handler, READ)

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except OSError:
            if not self.done:
                self.finish("reset", reset=True)
        except self.h11.ProtocolError as exc:
            if not self.done:
                self.finish("protocol_error", reset=True, error=str(exc))

    def _on_client(self, events: int) -> None:
        self._guard(self._handle, events, self.client)

    def _on_up(self, events: int) -> None:
        assert self.upstream is not None
        self._guard(self._handle, events, self.upstream)

    def _handle(self, events: int, sock: socket.socket) -> None:
        if events & WRITE:
            self._flush(sock)
        if self.done or not events & (READ | _ERRORS):
            return
        if not self._masks.get(sock.fileno(), 0) & READ:
            if events & _ERRORS:  # a hang-up on a side we no longer read: it is gone
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                self.finish("reset" if error else "closed", reset=bool(error))
            return
        try:
            data = sock.recv(_RECV)
        except BlockingIOError:
            return
        if sock is self.client:
            if not data:
                self.client_eof = True
                self._watch(sock, read=False)
            self.server.receive_data(data)
            self._client_events()
        else:
            if not data:
                self._watch(sock, read=False)
            self.up.receive_data(data)
            self._upstream_events()

    def _watch(self, sock: socket.socket, *, read: bool | None = None) -> None:
        fd = sock.fileno()
        mask = self._masks.get(fd, 0)
        if read is not None:
            mask = (mask | READ) if read else (mask & ~READ)
        mask = (mask | WRITE) if self.out.get(fd) else (mask & ~WRITE)
        if mask != self._masks.get(fd) and not self.done:
            self._masks[fd] = mask
            self.proxy._loop().modify(fd, mask)

    def _write(self, sock: socket.socket, data: bytes) -> None:
        if not data or self.done:
            return
        stats = self.proxy._stats
        if sock is self.client:
            stats.bytes_down += len(data)
        else:
            stats.bytes_up += len(data)
        out = self.out[sock.fileno()]
        if not out:
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            data = data[sent:]
        if data:
            out += data
            self._watch(sock)
            if len(out) > _OUT_LIMIT:  # stop reading from the side that feeds it
                other = self.upstream if sock is self.client else self.client
                assert other is not None
                self._watch(other, read=False)

    def _flush(self, sock: socket.socket) -> None:
        out = self.out[sock.fileno()]
        if out:
            try:
                sent = sock.send(out)
            except BlockingIOError:
                sent = 0
            del out[:sent]
        self._watch(sock)
        if not out:
            other = self.upstream if sock is self.client else self.client
            assert other is not None
            eof = self.client_eof if other is self.client else False
            if not eof and not self._masks.get(other.fileno(), 0) & READ:
                self._watch(other, read=True)
            if sock is self.client and self.closing is not None:
                self.finish(self.closing)

    def _to_client(self, event: Any) -> None:
        self._write(self.client, self.server.send(event) or b"")

    def _to_upstream(self, event: Any) -> None:
        assert self.upstream is not None
        self._write(self.upstream, self.up.send(event) or b"")

    def _close_when_flushed(self, outcome: str) -> None:
        self.closing = outcome
        if not self.out[self.client.fileno()]:
            self.finish(outcome)

    # -- requests ----------------------------------------------------------------------------
    def _client_events(self) -> None:
        if self._reading_requests:  # re-entered from a request that completed at once
            return
        self._reading_requests = True
        try:
            self._read_requests()
        finally:
            self._reading_requests = False

    def _read_requests(self) -> None:
        h11 = self.h11
        while not self.done:
            event = self.server.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._begin(event)
            elif isinstance(event, h11.Data | h11.EndOfMessage):
                self._forward(event)
            elif isinstance(event, h11.ConnectionClosed):
                if self.req is None:
                    self.finish("closed")
                return

    def _begin(self, request: Any) -> None:
        proxy = self.proxy
        now = proxy._loop().now()
        target = request.target.decode("latin-1")
        method = request.method.decode("ascii", "replace")
        req = _Request(proxy._next_request(), method, target.split("?", 1)[0], now, [])
        self.req = req
        fired = proxy._select(self, req)
        hold = sum(f.ms for f in fired if f.kind == "delay") / 1000
        req.abort = next((f for f in fired if f.kind == "abort"), None)
        req.response_faults = [f for f in fired if f.kind in _RESPONSE_FAULTS]
        if hold > 0:
            req.held = []
            req.timer = proxy._loop().call_at(now + hold, self._release)
        if req.abort is not None:
            if req.held is None:
                self._answer(req.abort)
            return
        self._forward(request)

    def _forward(self, event: Any) -> None:
        req = self.req
        if req is None or req.abort is not None:
            self._cycle()  # an aborted request's body is read and dropped
            return
        if req.held is not None:
            req.held.append(event)
            return
        self._to_upstream(event)

    def _release(self) -> None:
        req = self.req
        if req is None or req.held is None or self.done:
            return
        held, req.held, req.timer = req.held, None, None
        if req.abort is not None:
            self._guard(self._answer, req.abort)
            return
        for event in held:
            self._guard(self._to_upstream, event)

    def _answer(self, fault: HttpFault) -> None:
        """Respond with ``fault``'s status instead of the upstream."""
        h11 = self.h11
        req = self.req
        assert req is not None
        headers = [("Content-Type", "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(fault.body)))]
        if fault.retry_after is not None:
            headers.append(("Retry-After", str(fault.retry_after)))
        req.status, req.outcome = fault.status, "aborted"
        self._to_client(h11.Response(status_code=fault.status, headers=headers,
                                     reason=_phrase(fault.status).encode()))
        self._to_client(h11.Data(data=fault.body))
        self.proxy._request_done(self, req)  # before the client can see the end
        self._to_client(h11.EndOfMessage())
        self._cycle()

    # -- responses ---------------------------------------------------------------------------
    def _upstream_events(self) -> None:
        h11 = self.h11
        ahead: Any = None  # the event after a Data, read to know whether it ends the body
        while not self.done:
            try:
                if ahead is None:
                    event = self.up.next_event()
                else:
                    event, ahead = ahead, None
                if isinstance(event, h11.Data):
                    ahead = self.up.next_event()
            except h11.RemoteProtocolError as exc:
                self._upstream_failed(f"the upstream broke HTTP/1.1: {exc}")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.InformationalResponse):
                self._to_client(event)
            elif isinstance(event, h11.Response):
                self._response(event)
            elif isinstance(event, h11.Data):
                # a Content-Length body ends with its last byte: the client may stop
                # reading there, so the request is logged before that byte is sent
                self._body(event.data, last=isinstance(ahead, h11.EndOfMessage))
            elif isinstance(event, h11.EndOfMessage):
                self._response_end(event)
            elif isinstance(event, h11.ConnectionClosed):
                self._upstream_failed("the upstream closed the connection")
                return

    def _response(self, response: Any) -> None:
        h11 = self.h11
        req = self.req
        if req is None:
            return
        req.status = response.status_code
        headers = list(response.headers.raw_items())
        for fault in req.response_faults:
            if fault.kind == "drop_header":
                headers = [(k, v) for k, v in headers if k.lower() != fault.header.encode()]
            elif fault.kind == "truncate_body":
                req.left = fault.nbytes if req.left is None else min(req.left, fault.nbytes)
            elif fault.kind == "replace_body":
                req.body = bytearray()
        if req.body is not None:
            req.head = (response, headers)
            return
        if req.left == 0:
            req.outcome = "truncated"
            self.proxy._request_done(self, req)
        self._to_client(h11.Response(status_code=response.status_code, headers=headers,
                                     reason=response.reason, http_version=b"1.1"))
        if req.left == 0:
            self._truncate()

    def _body(self, data: bytes, *, last: bool = False) -> None:
        req = self.req
        if req is None or req.left == 0:
            return
        if req.body is not None:
            req.body += data
            return
        if req.left is not None:
            data = data[:req.left]
            req.left -= len(data)
            if req.left == 0:
                req.outcome = "truncated"
                self.proxy._request_done(self, req)  # before the client sees the cut
        if last:
            self.proxy._request_done(self, req)  # before the client can see the end
        self._to_client(self.h11.Data(data=data))
        if req.left == 0:
            self._truncate()

    def _truncate(self) -> None:
        assert self.req is not None
        self.req.outcome = "truncated"
        self.proxy._request_done(self, self.req)
        self._close_when_flushed("truncated")

    def _response_end(self, end: Any) -> None:
        h11 = self.h11
        req = self.req
        if req is None:
            return
        if req.body is not None:
            response, headers = req.head
            fault = next(f for f in req.response_faults if f.kind == "replace_body")
            drop = {b"content-length", b"transfer-encoding"}
            if fault.content_type is not None:
                drop.add(b"content-type")
            headers = [(k, v) for k, v in headers if k.lower() not in drop]
            if fault.content_type is not None:
                headers.append((b"Content-Type", fault.content_type.encode()))
            headers.append((b"Content-Length", str(len(fault.body)).encode()))
            self._to_client(h11.Response(status_code=response.status_code, headers=headers,
                                         reason=response.reason))
            self._to_client(h11.Data(data=fault.body))
            req.outcome = "replaced"
        self.proxy._request_done(self, req)  # before the client can see the end
        self._to_client(h11.EndOfMessage(headers=end.headers))
        self._cycle()

    def _upstream_failed(self, why: str) -> None:
        req = self.req
        if req is not None and req.abort is None and self.server.our_state is \
                self.h11.SEND_RESPONSE:
            req.status, req.outcome = 502, "upstream_error"
            body = f"502 Bad Gateway: {why} (pytest-resilience proxy)\n".encode()
            self._to_client(self.h11.Response(
                status_code=502, reason=b"Bad Gateway",
                headers=[("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                         ("Connection", "close")]))
            self._to_client(self.h11.Data(data=body))
            self.proxy._request_done(self, req)
            self._to_client(self.h11.EndOfMessage())
            self._close_when_flushed("upstream_error")
            return
        if req is None or self.server.our_state is self.h11.DONE:
            self._close_when_flushed("closed")
            return
        self.finish("upstream_error", error=why)

    def _cycle(self) -> None:
        """After a request and its response are both complete: the next request."""
        h11 = self.h11
        server, up, req = self.server, self.up, self.req
        finished = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)
        if req is None or server.our_state not in finished or server.their_state not in \
                finished:
            return
        self.proxy._request_done(self, req)
        self.req = None
        if server.our_state is not h11.DONE or server.their_state is not h11.DONE:
            self._close_when_flushed("closed")  # Connection: close, or HTTP/1.0
            return
        if up.our_state is h11.DONE and up.their_state is h11.DONE:
            up.start_next_cycle()
        elif up.our_state is not h11.IDLE:  # the upstream will close: so do we
            self._close_when_flushed("closed")
            return
        server.start_next_cycle()
        self._client_events()

    def release(self) -> None:
        if self.req is not None and self.req.timer is not None:
            self.req.timer.cancel()

    def close_attrs(self) -> dict[str, Any]:
        return {"requests": self.requests}


class HttpFaultProxy(ProxyBase):
    """An HTTP/1.1 proxy on ``127.0.0.1`` (port chosen by the OS) in front of ``upstream``.

    ``add_fault(fault, path=, methods=, rate=, times=)`` installs an ``HttpFault``
    (``faults.http.abort``, ``delay``, ``replace_body``, ``truncate_body``,
    ``drop_header``); point any HTTP client at ``proxy.url``. Use as a context manager
    (sync or async), or call ``start()``/``stop()``. On a ``VirtualClock`` delays wait in
    virtual time, driven by the test's thread.
    """

    family = "http"

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        name: str = "http",
        seed: int = 0,
        clock: Clock | None = None,
        history: History | None = None,
    ) -> None:
        super().__init__(upstream, name=name, seed=seed, clock=clock, history=history)
        _h11()  # fail at construction, naming the extra, when h11 is missing
        self._faults: dict[str, _Installed] = {}
        self._requests = 0

    def start(self) -> HttpFaultProxy:
        """Start serving; returns the proxy."""
        result: HttpFaultProxy = super().start()
        return result

    def __enter__(self) -> HttpFaultProxy:
        return self.start()

    async def __aenter__(self) -> HttpFaultProxy:
        return self.start()

    @property
    def faults(self) -> dict[str, tuple[HttpFault, Selector]]:
        """Installed faults by name: ``(fault, selector)``."""
        return self._locked(lambda: {n: (i.fault, i.selector) for n, i in self._faults.items()})

    def add_fault(self, fault: HttpFault, *, path: str = "*",
                  methods: str | list[str] | tuple[str, ...] | None = None,
                  rate: float = 1.0, times: int | None = None,
                  name: str | None = None) -> FaultHandle:
        """Install ``fault`` for requests whose path (without query) matches the glob
        ``path`` and whose method is in ``methods`` (None: any); each such request draws
        it with probability ``rate`` from the proxy's seeded RNG, at most ``times`` times
        (None: no limit). Returns a handle whose ``with`` block removes it."""
        if not isinstance(fault, HttpFault):
            raise TypeError(f"fault={validate.show(fault)} is not an HttpFault. Build one "
                            "with faults.http.abort(), delay(), replace_body(), ...")
        selector = Selector.build(path, methods, rate, times)
        fault_name = fault.kind if name is None else validate.text(
            name, "name", what="a fault name", accepted="a non-empty string, or None for "
            "the fault's kind")
        if self._locked(lambda: fault_name in self._faults):
            raise ValueError(f"name={fault_name!r} is already installed on proxy "
                             f"{self.name!r}. Pass another name= or remove it first.")
        self._event(FAULT_ARMED, family="http", fault=fault_name, action=str(fault),
                    path=selector.path, methods=sorted(selector.methods or ()) or None,
                    rate=selector.rate, times=selector.times)
        self._locked(lambda: self._faults.__setitem__(
            fault_name, _Installed(fault_name, fault, selector)))
        return FaultHandle(self, fault_name)

    def remove_fault(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove the fault called ``name`` (requests already begun keep it)."""
        installed = self._locked(lambda: self._faults.pop(name, None))
        if installed is None:
            if missing_ok:
                return
            raise KeyError(f"no fault named {name!r} on proxy {self.name!r}; installed: "
                           f"{sorted(self.faults)}.")
        self._event(FAULT_DISARMED, family="http", fault=name,
                    action=str(installed.fault), fired=installed.fired)

    def reset(self) -> None:
        """Remove every fault and bring the proxy up."""
        for name in list(self.faults):
            self.remove_fault(name, missing_ok=True)
        if self._down and self.running:
            self.up()

    # -- mutex held ------------------------------------------------------------------------
    def _new_conn(self, conn_id: int, client: socket.socket) -> BaseConn:
        return _HttpConn(self, conn_id, client)

    def _reset_run(self) -> None:
        self._requests = 0
        for installed in self._faults.values():
            installed.fired = 0

    def _next_request(self) -> int:
        self._requests += 1
        return self._requests

    def _select(self, conn: _HttpConn, req: _Request) -> list[HttpFault]:
        """The faults that fire on ``req``, in the order they were added."""
        fired: list[HttpFault] = []
        for installed in list(self._faults.values()):
            selector = installed.selector
            if not selector.matches(req.method, req.path):
                continue
            if selector.times is not None and installed.fired >= selector.times:
                continue
            if selector.rate < 1.0 and not self.rng.random() < selector.rate:
                continue
            installed.fired += 1
            fired.append(installed.fault)
            req.fired.append(installed.name)
            self._event(FAULT_FIRED, family="http", fault=installed.name,
                        action=str(installed.fault), trigger=_trigger(selector),
                        call=req.n, conn=conn.id, method=req.method, path=req.path)
        return fired

    def _request_done(self, conn: _HttpConn, req: _Request) -> None:
        if req.logged:
            return
        req.logged = True
        conn.requests += 1
        self._event(HTTP_REQUEST, conn=conn.id, request=req.n, method=req.method,
                    path=req.path, status=req.status, faults=list(req.fired),
                    outcome=req.outcome, elapsed=self._loop().now() - req.started)

    def __repr__(self) -> str:
        where = f"127.0.0.1:{self._port}" if self._port else "not started"
        return (f"<HttpFaultProxy {self.name!r} {where} -> "
                f"{self.upstream[0]}:{self.upstream[1]}>")


def _trigger(selector: Selector) -> str:
    parts = [str(selector)]
    if selector.rate < 1.0:
        parts.append(f"rate({selector.rate:g})")
    if selector.times is not None:
        parts.append(f"times({selector.times})")
    return " ".join(parts)
