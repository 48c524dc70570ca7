"""Loopback upstreams for the network tests: a TCP echo server and an HTTP/1.1 model
server, both on threads of this process (so virtual time can see them sleep)."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import selectors
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TypedDict

import pytest

from pytest_resilience.kinds import declare


class BodyAttrs(TypedDict):
    """What a test body says about itself (open: any attributes)."""


# The tests' own event kinds (the suite runs in strict mode), also used by the bodies
# of the pytester runs here, which share this process.
for _name in ("test.echo", "test.after_sleep", "test.reset", "test.predict"):
    declare(_name, BodyAttrs, source="body", doc="a network test's own event", open=True)


class _Stoppable(socketserver.BaseServer):
    """Serves on a thread that sleeps in ``select`` with no timeout (so a proxy looking
    for a quiet process sees it asleep) and stops at once when ``close`` wakes it
    through a pipe (``shutdown()`` would wait for the next poll)."""

    def serve_in_thread(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.fileno(), selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fd for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                self._handle_request_noblock()

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self.thread.join(5)
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.server_close()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


class EchoServer(_Stoppable, socketserver.ThreadingTCPServer):
    """Echoes every byte back; closes its side when the client closes its side."""

    daemon_threads = True
    block_on_close = True
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Echo)
        self.serve_in_thread()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)


class ModelHandler(http.server.BaseHTTPRequestHandler):
    """A tiny model server: JSON predictions, a chunked stream, a large body."""

    protocol_version = "HTTP/1.1"
    server: ModelServer

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", "X-Model": "m1",
                           **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        with self.server.lock:
            self.server.requests.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"alpha-", b"beta-", b"gamma"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/big"):
            self._send(200, bytes(range(256)) * 400, {"Content-Type": "application/octet"})
            return
        body = json.dumps({"path": self.path, "method": self.command,
                           "echo": payload.decode()}).encode()
        self._send(200, body)

    do_GET = do_POST = do_HEAD = do_PUT = _route

    def log_message(self, format: str, *args: object) -> None:
        pass


class ModelServer(_Stoppable, http.server.ThreadingHTTPServer):
    """An HTTP/1.1 keep-alive server counting requests and connections."""

    daemon_threads = True
    request_queue_size = 512

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ModelHandler)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.connections = 0
        self.serve_in_thread()

    def get_request(self) -> tuple[socket.socket, object]:
        conn, addr = super().get_request()
        with self.lock:
            self.connections += 1
        return conn, addr

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def start_echo() -> Iterator[Callable[[int], EchoServer]]:
    """Start an echo server on a given port (stopped at teardown)."""
    started: list[EchoServer] = []

    def start(port: int) -> EchoServer:
        held = _HELD.pop(port, None)
        if held is not None:  # a closed_port: let it go for the server
            held.close()
        started.append(EchoServer(port))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def model() -> Iterator[ModelServer]:
    server = ModelServer()
    yield server
    server.close()


_CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("upstreams", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
server = getattr(module, sys.argv[2])()
print(server.address[1], flush=True)
sys.stdin.read()
server.close()
"""


@pytest.fixture
def upstream_process() -> Iterator[Callable[[str], tuple[str, int]]]:
    """Start an ``EchoServer`` or ``ModelServer`` in a child process, for the tests that
    count this process's threads and descriptors: an in-process server accepts and
    closes its ends on its own threads, whenever they run, and would be counted too."""
    children: list[subprocess.Popen[str]] = []

    def start(server: str) -> tuple[str, int]:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, __file__, server],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        children.append(child)
        assert child.stdout is not None
        return "127.0.0.1", int(child.stdout.readline())

    yield start
    for child in children:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.close()
        child.wait(10)
        child.stdout.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on: held bound (never listening) for the whole test,
    so a connect is refused and no other process can take the port meanwhile (a port
    released at once was sometimes taken by another test's server). ``start_echo`` on
    it lets it go first."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    _HELD[port] = sock
    yield port
    _HELD.pop(port, sock).close()


#: Ports ``closed_port`` holds bound, by number.
_HELD: dict[int, socket.socket] = {}


@pytest.fixture(autouse=True)
def no_proxy_thread_left() -> Iterator[None]:
    """Every proxy a test starts is stopped, its thread joined, by the end of the test."""
    before = {t for t in threading.enumerate() if t.name.startswith("FaultProxy-")}
    yield
    left = [t.name for t in threading.enumerate()
            if t.name.startswith("FaultProxy-") and t not in before]
    assert left == [], f"proxy threads still running after the test: {left}"


#: Source for a pytester suite: an echo upstream on loopback (``upstream``) and the
#: test's fault proxy in front of it (``proxy``, named "db"). Needs ``socketserver``,
#: ``threading`` and ``pytest`` imported before it.
_ECHO_THROUGH_PROXY = '''

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def upstream():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy(fault_proxy, upstream):
    return fault_proxy(upstream, name="db")
'''


@pytest.fixture
def echo_through_proxy() -> str:
    """Source of an echo ``upstream`` and the ``proxy`` in front of it, for pytester."""
    return _ECHO_THROUGH_PROXY
