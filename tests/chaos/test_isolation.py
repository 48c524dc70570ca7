"""Plans are independent: fixtures a chaos body changes are fresh or reset per plan, and a
run whose plans leak state into each other says so instead of a raw ``FlakyFailure``."""

from __future__ import annotations

import contextlib

import pytest

from pytest_resilience.chaos._runner import SUPPRESSED_HEALTH_CHECKS, _settings

COUNTING = '''
import pytest

@pytest.fixture
def counter():
    box = {"n": 0}
    yield box
    box["closed"] = True

@pytest.fixture
def service(counter):
    return {"counter": counter}

@pytest.mark.chaos(families=["clock"], max_examples=30{fresh})
def test_counts(chaos, service):
    service["counter"]["n"] += 1
    chaos.clock.sleep(1.0)
    assert service["counter"]["n"] % 7 != 0, "seventh call"
'''


def test_state_leaking_between_plans_is_named_not_a_raw_flaky_failure(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(COUNTING.replace("{fresh}", ""))
    result = pytester.runpytest("--resilience-seed=1")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "FlakyFailure" not in out
    assert ("chaos: plan 7 failed (the body raised AssertionError: seventh call), but passed "
            "when it ran again: the plans are not independent.") in out
    assert "@pytest.mark.chaos(fresh=[...]) re-creates the named fixtures" in out


def test_fresh_fixtures_and_their_dependents_are_re_created_per_plan(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(COUNTING.replace("{fresh}", ', fresh=["counter"]'))
    result = pytester.runpytest("--resilience-seed=1")
    result.assert_outcomes(passed=1)


def test_fresh_refuses_fixtures_it_cannot_re_create(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest

@pytest.fixture(scope="module")
def shared():
    return {}

@pytest.mark.chaos(fresh=["shared"])
def test_module_scoped(chaos, shared):
    pass

@pytest.mark.chaos(fresh=["nope"])
def test_unknown(chaos):
    pass
''')
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert ("@pytest.mark.chaos fresh=['shared']: 'shared' is module-scoped; only "
            "function-scoped fixtures can be re-created per plan.") in out
    assert ("@pytest.mark.chaos fresh=['nope']: the test does not use fixture(s) ['nope']. "
            "Name fixtures the test (or its fixtures) use.") in out


def test_proxies_are_reset_and_plan_made_proxies_stopped_after_each_plan(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import socket
import socketserver
import threading
import pytest
from faults import network

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(1024):
            self.request.sendall(data)

@pytest.fixture
def upstream():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield server.server_address
    server.shutdown()
    server.server_close()
    thread.join()

@pytest.fixture
def proxy(fault_proxy, upstream):
    return fault_proxy(upstream, name="fixture")

@pytest.mark.chaos(families=["clock"], max_examples=8)
def test_each_plan_starts_clean(chaos, fault_proxy, proxy, upstream):
    assert proxy.toxics == {}, "a toxic from an earlier plan"
    proxy.add_toxic(network.latency(5), name="slow")
    own = fault_proxy(upstream, name="per-plan")  # refused on a name reused in a test
    with socket.create_connection(own.address, timeout=5) as conn:
        conn.sendall(b"ping")
        assert conn.recv(4) == b"ping"
''')
    result = pytester.runpytest("--resilience-seed=2")
    result.assert_outcomes(passed=1)


@pytest.mark.filterwarnings("ignore:legacy embedding function config:DeprecationWarning")
def test_the_chroma_store_is_put_back_after_each_plan(pytester: pytest.Pytester) -> None:
    pytest.importorskip("chromadb", reason="chroma_store needs chromadb")
    pytester.makepyfile('''
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

@pytest.mark.chaos(families=["clock"], max_examples=4)
def test_deletes(chaos, chroma_store):
    collection = chroma_store.collection()
    assert collection.count() == 300, "records deleted by an earlier plan"
    collection.delete(ids=list(chroma_store.records)[:10])
''')
    result = pytester.runpytest("--resilience-seed=3")
    result.assert_outcomes(passed=1)


def test_only_the_health_checks_a_chaos_run_must_suppress_are_off() -> None:
    from hypothesis import HealthCheck

    settings = _settings(10)
    assert sorted(h.name for h in settings.suppress_health_check) == sorted(
        SUPPRESSED_HEALTH_CHECKS)
    assert HealthCheck.too_slow not in settings.suppress_health_check
    assert all(len(reason) > 40 for reason in SUPPRESSED_HEALTH_CHECKS.values())


def test_a_body_drawing_thousands_of_decisions_still_runs() -> None:
    import faults
    from faults import Action
    from faults.families import failpoints
    from pytest_resilience.chaos import ChaosRun, run_chaos

    def body(run: ChaosRun) -> None:
        for _ in range(3000):
            with contextlib.suppress(ConnectionError):
                faults.failpoint("hot")

    result = run_chaos(body, families=[failpoints({"hot": [Action.raise_(ConnectionError)]})],
                       seed=4, max_examples=10)
    assert result.plans >= 10
