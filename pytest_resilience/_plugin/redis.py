"""The ``redis_server`` fixture: a real ``redis-server`` for the session (issue 19).

One server per session, so one per pytest-xdist worker: it listens on a free loopback
port, keeps its files in a temporary directory, and is stopped at the end of the
session. Where ``redis-server`` is not installed the tests that ask for it skip with a
reason, except under CI (``CI`` set), where a missing server is an error.
"""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import redis

_READY = b"Ready to accept connections"
_START_TIMEOUT = 20.0  # seconds to wait for the server to say it is ready
_ATTEMPTS = 5  # ports tried: another process may take the free port before the server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` process on ``127.0.0.1``, started by ``start()``.

    ``url`` is what ``RedisStorage`` and ``redis.Redis.from_url`` take; ``client()``
    returns a plain client; ``flush()`` empties every database between tests.
    """

    def __init__(self, executable: str, directory: Path) -> None:
        self.executable = executable
        self.directory = directory
        self.host = "127.0.0.1"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, to point a ``FaultProxy`` at."""
        return (self.host, self.port)

    def start(self) -> RedisServer:
        """Start the server and wait until it accepts connections; returns it."""
        failures: list[str] = []
        for _ in range(_ATTEMPTS):
            port = _free_port()
            output = self._launch(port)
            if output is None:
                self.port = port
                return self
            failures.append(output)
        raise RuntimeError(
            f"redis-server did not start on a free port after {_ATTEMPTS} attempts; its "
            f"last output:\n{failures[-1]}"
        )

    def _launch(self, port: int) -> str | None:
        """Start on ``port``: ``None`` once ready, else the output of the failed start."""
        proc = subprocess.Popen(
            [self.executable, "--port", str(port), "--bind", self.host,
             "--save", "", "--appendonly", "no", "--dir", str(self.directory),
             "--protected-mode", "yes", "--daemonize", "no", "--logfile", ""],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        seen = b""
        deadline = time.monotonic() + _START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while _READY not in seen:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    break
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
        # The server ignores SIGPIPE: closing our end keeps its later log lines from
        # ever filling a pipe nobody reads.
        proc.stdout.close()
        if _READY in seen:
            self._proc = proc
            return None
        self._stop(proc)
        return seen.decode(errors="replace")

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._proc is not None:
            self._stop(self._proc)
            self._proc = None

    def client(self, **options: Any) -> redis.Redis:
        """A ``redis.Redis`` client for this server (``options`` go to ``from_url``)."""
        import redis

        return redis.Redis.from_url(self.url, **options)

    def flush(self) -> None:
        """Delete every key in every database."""
        with self.client() as client:
            client.flushall()

    def __repr__(self) -> str:
        return f"<RedisServer {self.url}>"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real ``redis-server`` on a free loopback port for this session (or xdist worker).

    Skips where ``redis-server`` is not installed, except when ``CI`` is set.
    """
    executable = shutil.which("redis-server")
    if executable is None:
        message = ("redis-server is not installed (Debian: apt-get install redis-server); "
                   "the tests that need a real Redis skip.")
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}", pytrace=False)
        pytest.skip(message)
    server = RedisServer(executable, tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()
