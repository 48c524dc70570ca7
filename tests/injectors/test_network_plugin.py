"""The ``fault_proxy`` fixture, run through pytester."""

from __future__ import annotations

import pytest

# Imported here so that every in-process pytester run shares one copy of the module
# (pytester forgets modules first imported during a run).
import faults.network  # noqa: F401

UPSTREAM = """
import socket, threading
import pytest

@pytest.fixture
def upstream():
    server = socket.create_server(("127.0.0.1", 0))
    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)
    thread = threading.Thread(target=serve)
    thread.start()
    yield server.getsockname()
    server.shutdown(socket.SHUT_RDWR)  # wakes accept()
    server.close()
    thread.join(5)

@pytest.fixture
def echo():
    return roundtrip

def roundtrip(address, payload, timeout=5):
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out
"""


def test_fault_proxy_fixture_starts_seeds_and_stops_proxies(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM)
    pytester.makepyfile(
        """
        import threading
        from faults import network

        LEFT = []

        def test_proxy(fault_proxy, upstream, echo, resilience_seed):
            from pytest_resilience._plugin.state import derive_seed
            proxy = fault_proxy(upstream, name="db")
            assert proxy.seed == derive_seed(resilience_seed, "db")
            assert echo(proxy.address, b"hello") == b"hello"
            with proxy.add_toxic(network.limit_data(2)):
                assert echo(proxy.address, b"hello") == b"he"
            LEFT.append(proxy)

        def test_failing_test_still_stops_its_proxy(fault_proxy, upstream):
            proxy = fault_proxy(upstream, name="db")
            LEFT.append(proxy)
            raise AssertionError("boom")

        def test_after():
            assert LEFT and not any(p.running for p in LEFT)
            assert not [t for t in threading.enumerate() if t.name.startswith("FaultProxy")]
        """
    )
    result = pytester.runpytest("-p", "resilience", "--resilience-seed=3")
    result.assert_outcomes(passed=2, failed=1)
    # limit_data acted on the connection (once, or twice when the first one was still
    # closing): the summary counts the network family's fault.fired events.
    result.stdout.fnmatch_lines(["*faults fired: [12] (network [12])*"])


def test_proxy_names_must_be_unique_in_a_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM)
    pytester.makepyfile(
        """
        import pytest

        def test_dup(fault_proxy, upstream):
            fault_proxy(upstream, name="db")
            with pytest.raises(ValueError, match="name='db' is already used by a proxy"):
                fault_proxy(upstream, name="db")
        """
    )
    pytester.runpytest("-p", "resilience").assert_outcomes(passed=1)


def test_toxicity_decisions_replay_with_the_session_seed(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM)
    pytester.makepyfile(
        """
        from faults import network

        def test_decisions(fault_proxy, upstream, echo, history):
            proxy = fault_proxy(upstream, name="svc")
            proxy.add_toxic(network.latency(0), toxicity=0.5)
            for _ in range(16):
                echo(proxy.address, b".")
            applied = [e.attrs["applied"] for e in history.select("proxy.toxic")
                       if "applied" in e.attrs]
            print("DECISIONS", "".join("1" if a else "0" for a in applied))
        """
    )
    runs = [pytester.runpytest("-p", "resilience", f"--resilience-seed={s}", "-s")
            for s in (5, 5, 6)]
    lines = [next(line.split("DECISIONS ")[1] for line in r.outlines if "DECISIONS " in line)
             for r in runs]
    assert lines[0] == lines[1] != lines[2]


def test_fault_proxy_runs_on_the_tests_clock_and_history(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM)
    pytester.makepyfile(
        """
        import socket
        from faults import network

        def test_latency_in_virtual_time(fault_proxy, upstream, clock, history):
            proxy = fault_proxy(upstream, name="db")
            assert proxy.clock is clock and proxy.history is history
            proxy.add_toxic(network.latency(250))
            with socket.create_connection(proxy.address, timeout=10) as sock:
                sock.sendall(b"ping")
                assert sock.recv(4) == b"ping"
            assert clock.monotonic() == 0.25
            kinds = [(e.kind, e.attrs.get("family")) for e in history.select("fault.")]
            assert kinds == [("fault.armed", "network"), ("fault.fired", "network")]
        """
    )
    pytester.runpytest("-p", "resilience").assert_outcomes(passed=1)


def test_http_fault_proxy_fixture(pytester: pytest.Pytester) -> None:
    pytest.importorskip("h11", reason="faults.http needs h11 (the http extra)")
    pytester.makepyfile(
        """
        import http.server, threading, urllib.error, urllib.request
        import pytest
        from faults import http as fh

        class Ok(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        @pytest.fixture
        def service():
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
            thread = threading.Thread(target=server.serve_forever)
            thread.start()
            yield server.server_address[:2]
            server.shutdown()
            server.server_close()
            thread.join(5)

        def test_503(http_fault_proxy, service, history):
            proxy = http_fault_proxy(service)
            assert proxy.name == "http"
            with proxy.add_fault(fh.abort(503), path="/predict"):
                with pytest.raises(urllib.error.HTTPError) as info:
                    urllib.request.urlopen(proxy.url + "/predict", timeout=10)
                info.value.close()
                assert info.value.code == 503
            with urllib.request.urlopen(proxy.url + "/predict", timeout=10) as response:
                assert response.read() == b"ok"
            assert [e.attrs["status"] for e in history.select("http.request")] == [503, 200]
        """
    )
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*faults fired: 1 (http 1)*"])  # the abort, not the 200
