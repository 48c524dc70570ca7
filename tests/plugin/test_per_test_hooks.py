"""Per-test hooks come with the first use of the harness; markers are read in one pass.

A session whose tests never touch the harness must run no per-test hook of the plugin
(its cost on a large suite is what ``benchmarks/test_bench_harness.py`` measures); every
behaviour those hooks carry must still hold once a test does use the harness.
"""

from __future__ import annotations

import json

import pytest

from pytest_resilience import arming

#: A conftest that writes, at the end of the inner session, which of our hook
#: implementations run per test and per collection, and the records the session kept.
PROBE = """
import json
import pytest

PER_TEST = ("pytest_runtest_setup", "pytest_runtest_call", "pytest_runtest_teardown",
            "pytest_runtest_logreport", "pytest_runtest_makereport", "pytest_runtest_protocol")


def ours(impl):
    return getattr(impl.function, "__module__", "").startswith(("pytest_resilience", "faults"))


def pytest_sessionfinish(session):
    from pytest_resilience._plugin.state import get_state

    hook = session.config.hook
    out = {
        "per_test": sorted(name for name in PER_TEST
                           for impl in getattr(hook, name).get_hookimpls() if ours(impl)),
        "collection": sum(map(ours, hook.pytest_collection_modifyitems.get_hookimpls())),
        "generate": sum(map(ours, hook.pytest_generate_tests.get_hookimpls())),
        "records": get_state(session.config).records,
    }
    with open("probe.json", "w") as fh:
        json.dump(out, fh, default=repr)
"""


def probe(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    pytester.makeconftest(PROBE)
    result = pytester.runpytest("-p", "no:randomly", *args)
    return result, json.loads((pytester.path / "probe.json").read_text())


def test_a_suite_that_never_uses_the_harness_runs_no_per_test_hook(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_a():\n    pass\n\n\ndef test_b():\n    assert 1\n")
    result, seen = probe(pytester)
    result.assert_outcomes(passed=2)
    assert seen["per_test"] == []
    assert seen["records"] == {}
    # One pass over the collected items and one parametrisation hook, for every family.
    assert seen["collection"] == 1
    assert seen["generate"] == 1


def test_the_first_harness_test_gets_a_whole_record_after_plain_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_plain():
            pass

        def test_harness_fails(history):
            raise AssertionError("boom")

        def test_plain_after():
            pass
        """
    )
    result, seen = probe(pytester)
    result.assert_outcomes(passed=2, failed=1)
    assert seen["per_test"] == ["pytest_runtest_call", "pytest_runtest_logreport",
                                "pytest_runtest_teardown"]
    record = seen["records"]["test_the_first_harness_test_gets_a_whole_record_after_plain_tests.py"
                             "::test_harness_fails"]
    assert record["outcome"] == "failed"
    assert record["failure"]["phase"] == "call"
    assert "boom" in record["failure"]["message"]
    assert record["events"] == 0  # the record built from its history is attached too
    assert "- resilience -" in result.stdout.str()


def test_a_report_lists_every_test_whether_or_not_it_used_the_harness(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_plain():
            pass

        def test_harness(history):
            pass
        """
    )
    result, _ = probe(pytester, f"--resilience-report={pytester.path / 'out'}")
    result.assert_outcomes(passed=2)
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert sorted(t["nodeid"].split("::")[1] for t in report["tests"]) == ["test_harness",
                                                                           "test_plain"]
    assert report["summary"]["tests"] == 2


def test_a_failpoint_leaked_by_a_plain_test_after_others_fails_that_teardown(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import faults

        def test_plain():
            pass

        def test_leaks():
            faults.inject("db.write").start()

        def test_clean_after():
            assert faults.armed_failpoints() == []
        """
    )
    result, seen = probe(pytester)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaks*",
                                 "*failpoints [[]'db.write'[]] were still armed after the test*"])
    assert seen["per_test"] == ["pytest_runtest_teardown"]  # the leak check alone


def test_a_session_inside_another_gives_the_arming_hook_back(
    pytester: pytest.Pytester,
) -> None:
    before = arming.set_hook(None)
    arming.set_hook(before)
    pytester.makepyfile("import faults\n\n\ndef test_x():\n    faults.inject('p').start()\n")
    pytester.runpytest_inprocess().assert_outcomes(passed=1, errors=1)
    after = arming.set_hook(before)
    assert after is before


def test_the_closest_marker_decides_and_each_rule_runs_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.sla("p50<1s", clock="real")

        @pytest.mark.sla("p50<1s", clock="virtual")
        def test_virtual(request, sla):
            names = request.fixturenames
            assert names.index("clock") < names.index("sla")
            assert names.count("sla") == 1
            for _ in range(20):
                sla.record("op", 0.001)

        def test_real(request):
            assert "sla" in request.fixturenames and "clock" not in request.fixturenames
            for _ in range(20):
                request.getfixturevalue("sla").record("op", 0.001)
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_plain_session_imports_no_asyncio_through_the_families(
    pytester: pytest.Pytester,
) -> None:
    """Loading every family module stays cheap: asyncio (with ssl, about 40 ms, most of
    the plugin's cost on a 2,000-test suite) is imported only when a test needs it."""
    pytester.makepyfile(
        "import sys\n\n\ndef test_plain():\n"
        "    assert [m for m in ('asyncio', 'ssl') if m in sys.modules] == []\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_the_arming_hook_must_be_a_function_or_none() -> None:
    before = arming.set_hook(None)
    try:
        with pytest.raises(TypeError) as info:
            arming.set_hook(42)  # type: ignore[arg-type]
        assert str(info.value) == "fn=42 is not callable. Pass a function, or None."
        assert arming.set_hook(None) is None  # the refused value was never installed
    finally:
        arming.set_hook(before)
