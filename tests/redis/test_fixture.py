"""The ``redis_server`` fixture: a real server per session (per xdist worker), stopped at
the end, skipped with a reason where ``redis-server`` is missing unless ``CI`` is set."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

USES_SERVER = '''
import os
from pathlib import Path

def record(name, server):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(os.environ["OUT"], f"{worker}-{name}").write_text(str(server.port))

def test_a(redis_server):
    with redis_server.client() as client:
        assert client.ping()
    record("a", redis_server)

def test_b(redis_server):
    record("b", redis_server)
'''


def test_the_server_answers_and_keeps_its_files_in_a_temporary_directory(
    redis_server: Any,
) -> None:
    with redis_server.client() as client:
        assert client.ping()
        assert Path(client.config_get("dir")["dir"]) == redis_server.directory
        assert client.config_get("bind")["bind"] == "127.0.0.1"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_one_server_per_xdist_worker_stopped_at_the_end(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = pytester.mkdir("out")
    monkeypatch.setenv("OUT", str(out))
    pytester.makepyfile(USES_SERVER)
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=4)  # with --dist each, both workers run both tests
    ports = {f.name: int(f.read_text()) for f in out.iterdir()}
    assert sorted(ports) == ["gw0-a", "gw0-b", "gw1-a", "gw1-b"]
    assert ports["gw0-a"] == ports["gw0-b"]  # one server per worker, shared by its tests
    assert ports["gw1-a"] == ports["gw1-b"]
    assert ports["gw0-a"] != ports["gw1-a"]
    assert not any(_answers(port) for port in ports.values())  # stopped at the end


def test_missing_server_skips_with_a_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(pytester.path))
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile("def test_x(redis_server):\n    pass\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([
        "*redis-server is not installed (Debian: apt-get install redis-server); the tests "
        "that need a real Redis skip."])


def test_missing_server_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(pytester.path))
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile("def test_x(redis_server):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI is set but redis-server is not installed*"])
