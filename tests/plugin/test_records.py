"""One history is the truth: every family's faults, every test and every verdict reach the
report, counted from the tests' histories, the same under xdist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# Imported before any pytester snapshot: these modules are shared by the in-process runs.
import faults.chroma
import faults.clock
import faults.cuda
import faults.memory
import faults.network  # noqa: F401

jsonschema = pytest.importorskip("jsonschema", reason="validates report.json")
pytest.importorskip("chromadb", reason="the suite includes a Chroma fail_during test")

CONFTEST = """
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
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)

def roundtrip(address, payload):
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out
"""

SUITE = """
import pytest
import faults
import faults.chroma
import faults.cuda
from faults import Action, network
from pytest_resilience import Backoff, FaultInjected, Retry
from pytest_resilience.checks import check_retry
from conftest import roundtrip

def test_plain_failure():
    assert 1 + 1 == 3

@pytest.mark.chaos(failpoints={"db.read": [Action.raise_(ConnectionError)]},
                   max_examples=20)
def test_chaos_failure(chaos):
    faults.failpoint("db.read")  # no retry: the first fault breaks the body

def test_network_toxic(fault_proxy, upstream):
    proxy = fault_proxy(upstream)
    with proxy.add_toxic(network.limit_data(2)):
        assert roundtrip(proxy.address, b"hello") == b"he"

def test_clock_skew(faults, clock, history):
    before = clock.time()
    with faults.clock.skew(-3600, clock=clock):
        assert clock.time() == before - 3600

def test_memory_pressure(memory_pressure):
    memory_pressure(92)

def test_fake_gpu_spike(fake_gpu, history):
    with faults.cuda.cuda_spike(0, 2**30):
        assert fake_gpu.devices[0].used == 2**30

def test_chroma_fail_during(chroma_store, history):
    collection = chroma_store.collection()
    with faults.chroma.fail_during(collection, "add", after=1):
        with pytest.raises(FaultInjected):
            collection.add(ids=["a", "b"], embeddings=[[0.0] * 8, [1.0] * 8])

def test_checker_verdict(history, clock):
    attempts = []
    @Retry(attempts=3, backoff=Backoff.constant(0.1), jitter="none", clock=clock)
    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("down")
        return "ok"
    assert flaky() == "ok"
    assert check_retry(history, attempts=3)

@pytest.mark.sla("p50<=50ms", clock="virtual")
def test_sla_under_a_failpoint(sla, faults, clock):
    for i in range(20):
        with sla.measure("query"):
            clock.advance(0.01)
    faults.inject("db.read", Action.delay(0.03))
    for i in range(20):
        with sla.measure("query"):
            faults.failpoint("db.read")
"""

FAILING = ("test_suite.py::test_chaos_failure", "test_suite.py::test_plain_failure")


def _run(pytester: pytest.Pytester, *args: str) -> dict[str, Any]:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--resilience-seed=5",
                                           *args)
    result.assert_outcomes(passed=7, failed=2)
    out = pytester.path / args[-1].split("=", 1)[1]
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    from pytest_resilience.report import SCHEMA

    jsonschema.validate(report, SCHEMA)
    report["markdown"] = (out / "report.md").read_text(encoding="utf-8")
    report["stdout"] = result.stdout.str()
    return report


def test_every_family_every_test_and_every_failure_reach_the_report(
    pytester: pytest.Pytester,
) -> None:
    report = _run(pytester, "--resilience-report=out")
    tests = {t["nodeid"]: t for t in report["tests"]}
    assert len(tests) == 9  # every test, not only the SLA ones
    assert sorted(n for n, t in tests.items() if t["outcome"] == "failed") == list(FAILING)
    summary = report["summary"]
    assert (summary["tests"], summary["passed"], summary["failed"], summary["ok"]) == (
        9, 7, 2, False)
    fired = summary["faults_fired"]
    assert set(fired) == {"chroma", "clock", "cuda", "failpoint", "memory", "network"}
    assert fired["clock"] == fired["cuda"] == fired["chroma"] == 1
    assert fired["network"] >= 1
    assert fired["memory"] == 1
    assert tests["test_suite.py::test_network_toxic"]["faults"]["network"] >= 1
    assert tests["test_suite.py::test_memory_pressure"]["faults"] == {"memory": 1}
    # The SLA samples taken while the failpoint was armed are filed as faults.
    sla = tests["test_suite.py::test_sla_under_a_failpoint"]["sla"]["operations"]["query"]
    assert (sla["baseline"]["count"], sla["faults"]["count"]) == (20, 20)
    # The coverage matrix: the operation was exercised under the failpoint family and the
    # budget judged it; merged over the run in the summary.
    cell = tests["test_suite.py::test_sla_under_a_failpoint"]["coverage"]["cells"]["query"]
    assert cell["failpoint"] == {"p50<=50ms": "PASS"}
    assert summary["coverage"]["cells"]["query"]["failpoint"] == {"p50<=50ms": "PASS"}
    assert "query x failpoint (20 observed): p50<=50ms: PASS" in report["stdout"]
    # The failures lead: their messages, their replay lines.
    chaos = tests["test_suite.py::test_chaos_failure"]
    assert chaos["chaos"]["failures"] >= 1  # failing plans, shrinking included
    assert chaos["chaos"]["plan"]["faults"][0]["failpoint"] == "db.read"
    assert chaos["failure"]["replay"].startswith("pytest 'test_suite.py::test_chaos_failure'")
    plain = tests["test_suite.py::test_plain_failure"]
    assert plain["failure"]["message"].startswith("assert (1 + 1) == 3")
    markdown = report["markdown"]
    assert markdown.startswith("## ❌ pytest-resilience: 2 of 9 tests failed")
    assert markdown.index("### Failures") < markdown.index("### SLA budgets")
    assert [line for line in markdown.splitlines() if line.startswith("- ❌")] == [
        f"- ❌ `{FAILING[0]}` (failed in call): " + chaos["failure"]["message"].split("\n")[0],
        f"- ❌ `{FAILING[1]}` (failed in call): " + plain["failure"]["message"].split("\n")[0],
    ]


def test_the_same_numbers_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist runs the -n 2 case")
    serial = _run(pytester, "--resilience-report=serial")
    parallel = _run(pytester, "-p", "xdist", "-n", "2", "--resilience-report=par")

    def numbers(report: dict[str, Any]) -> dict[str, Any]:
        summary = dict(report["summary"])
        summary["faults_fired"] = {k: v > 0 for k, v in summary["faults_fired"].items()}
        return {"summary": summary,
                "tests": {t["nodeid"]: (t["outcome"], sorted(t["faults"]))
                          for t in report["tests"]},
                "operations": [(o["operation"], o["variant"], o["count"])
                               for o in report["operations"]]}

    assert numbers(parallel) == numbers(serial)  # the coverage matrix too (in summary)
    assert parallel["summary"]["coverage"]["operations"] == ["query"]
    assert parallel["lost_workers"] == []


def test_every_event_of_a_test_is_stamped_by_the_tests_clock(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import faults
        from faults import Action
        from pytest_resilience import SystemClock, VirtualClock, Backoff, Retry

        def test_mixed_clocks(faults, clock, history):
            other = VirtualClock(start=1000.0)   # a component with a clock of its own
            retry = Retry(attempts=2, backoff=Backoff.constant(5.0), jitter="none",
                          clock=other)
            clock.advance(2.0)
            with faults.memory.memory_pressure(80, clock=SystemClock()):  # real time
                clock.advance(1.0)
                try:
                    retry.call(lambda: 1 / 0)
                except Exception:
                    pass
            faults.inject("db.read", Action.raise_())
            times = {e.time for e in history}
            assert times <= {2.0, 3.0}, times
            assert history.clock is clock
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_a_leaked_failpoint_is_reported_when_another_teardown_fails_too(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        import faults

        @pytest.fixture
        def broken():
            yield
            raise RuntimeError("fixture teardown broke")

        def test_leaks(broken):
            faults.inject("db.read").start()  # never stopped
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.re_match_lines([
        r"failpoints \['db\.read'\] were still armed after the test; they have been "
        r"disarmed\..* The teardown also failed: RuntimeError: fixture teardown broke$",
    ])


def test_faults_fixture_reads_like_the_module(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import faults as faults_module

        def test_module_names(faults):
            assert faults.failpoint is faults_module.failpoint
            assert faults.Fault is faults_module.Fault
            assert faults.network is faults_module.network

        def test_inject_as_a_call_is_armed_until_teardown(faults):
            faults.inject("db.read")
            assert faults_module.armed_failpoints() == ["db.read"]

        def test_inject_as_a_with_block_is_disarmed_after_it(faults):
            with faults.inject("db.read") as plan:
                assert faults_module.armed_failpoints() == ["db.read"]
            assert faults_module.armed_failpoints() == []
            assert not plan.active

        def test_unknown_names_say_what_is_offered(faults):
            try:
                faults.nope
            except AttributeError as exc:
                assert "the faults fixture has no attribute 'nope'" in str(exc)
            else:
                raise AssertionError("no AttributeError")
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def test_schema_file_is_shipped_inside_the_package() -> None:
    import pytest_resilience.report

    shipped = Path(pytest_resilience.report.__file__).parent / "report.schema.json"
    from pytest_resilience.report import SCHEMA

    assert json.loads(shipped.read_text(encoding="utf-8")) == SCHEMA
    assert SCHEMA["properties"]["schema_version"] == {"const": 2}
