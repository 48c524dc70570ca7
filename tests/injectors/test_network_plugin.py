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
