"""--resilience-report=DIR: report.json (schema), report.md, report.html, xdist merge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience.report._json import SCHEMA

pytest_plugins = ["pytester"]
jsonschema = pytest.importorskip("jsonschema", reason="validates report.json against SCHEMA")

SUITE = """
import pytest

@pytest.mark.sla("p95<=20ms", "error_rate<5%", clock="virtual")
@pytest.mark.parametrize("shard", range(4))
def test_search(sla, clock, shard):
    for i in range(250):
        with sla.measure("search"):
            clock.advance(0.001 * (1 + (i + shard) % 10))

@pytest.mark.sla("max<1ms", clock="virtual")
def test_broken(sla, clock):
    for _ in range(30):
        with sla.measure("write"):
            clock.advance(0.002)

def test_plain(resilience_seed):
    assert resilience_seed >= 0
"""


def _report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, SCHEMA)
    return data


def _counts(report: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {(op["operation"], op["variant"]): op["count"] for op in report["operations"]}


def test_report_files_exist_and_validate(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step_summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--resilience-report=out", "--resilience-seed=7")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        ["resilience report: *report.json", "resilience report: *report.html"]
    )
    out = pytester.path / "out"
    report = _report(out)
    assert report["seed"] == 7
    assert report["seed_source"] == "option"
    summary_ = report["summary"]
    assert summary_["budgets"] == {"total": 9, "passed": 8, "failed": 1, "unverified": 0}
    assert (summary_["tests"], summary_["passed"], summary_["failed"], summary_["ok"]) == (
        6, 5, 1, False)
    assert _counts(report) == {("search", "baseline"): 1000, ("write", "baseline"): 30}
    tests = {t["nodeid"]: t for t in report["tests"]}
    broken = tests["test_report_files_exist_and_validate.py::test_broken"]
    assert broken["outcome"] == "failed"
    assert broken["sla"]["budgets"][0]["observed"] == pytest.approx(0.002)
    assert "seed" in tests["test_report_files_exist_and_validate.py::test_plain"]
    search = next(op for op in report["operations"] if op["operation"] == "search")
    assert search["percentiles"]["p99.9"] is None  # 1,000 samples cannot support p99.9
    assert search["percentiles"]["p50"] == pytest.approx(0.0055, rel=0.1)

    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert markdown.startswith(
        "## ❌ pytest-resilience: 1 of 6 tests failed · 1 of 9 SLA budgets not met")
    failures = markdown.index("### Failures")
    assert markdown.index("test_broken") > failures  # the failure leads, before the tables
    assert failures < markdown.index("### SLA budgets")
    assert "| `test_report_files_exist_and_validate.py::test_broken` | `max<1ms` |" in markdown
    assert summary.read_text(encoding="utf-8") == "# earlier step\n" + markdown

    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert html.index('id="failures"') < html.index('id="tests"') < html.index('id="operations"')
    assert html.count('aria-label="search: latency by percentile"') == 1
    assert html.count('aria-label="write: latency histogram"') == 1
    assert 'class="budget-line" data-budget="max&lt;1ms" data-verdict="broken"' in html
    assert html.count("<script") == 1  # the inline sorting script; nothing loaded
    assert "src=" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_no_report_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    pytester.runpytest().assert_outcomes(passed=5, failed=1)
    assert not list(pytester.path.rglob("report.json"))


def test_xdist_merge_has_the_serial_sample_count(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist runs the -n 2 case")
    pytester.makepyfile(SUITE)
    serial = pytester.runpytest_subprocess("--resilience-report=serial")
    serial.assert_outcomes(passed=5, failed=1)
    parallel = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "--resilience-report=par")
    parallel.assert_outcomes(passed=5, failed=1)
    one, two = _report(pytester.path / "serial"), _report(pytester.path / "par")
    assert _counts(one) == _counts(two) == {("search", "baseline"): 1000, ("write", "baseline"): 30}
    assert two["environment"]["xdist_workers"] == 2
    assert [op["histogram"] for op in one["operations"]] == [
        op["histogram"] for op in two["operations"]
    ]
    assert two["summary"] == one["summary"]
    assert two["lost_workers"] == []


def test_a_crashed_worker_loses_only_the_crashed_tests_samples(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist runs the -n 2 case")
    ok = "@pytest.mark.sla(clock='virtual')\ndef test_ok_{}(sla):\n"
    ok += "    for _ in range(10):\n        sla.record('op', 0.001)\n"
    crash = "@pytest.mark.sla(clock='virtual')\ndef test_crash(sla):\n"
    crash += "    sla.record('op', 0.001)\n    os._exit(3)\n"
    body = [ok.format(i) for i in range(3)] + [crash] + [ok.format(i) for i in range(3, 6)]
    pytester.makepyfile("import os\nimport pytest\n\n" + "\n".join(body))
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "--max-worker-restart=2", "--resilience-report=out"
    )
    result.assert_outcomes(passed=6, failed=1)
    report = _report(pytester.path / "out")
    assert report["lost_workers"], result.stdout.str()
    assert len(report["lost_workers"]) == 1
    # Samples travel with each test's report: only the crashed test's one sample is lost.
    assert sum(op["count"] for op in report["operations"]) == 60
    crashed = next(t for t in report["tests"] if t["nodeid"].endswith("test_crash"))
    assert crashed["outcome"] == "failed"
    assert report["summary"]["ok"] is False


def test_compare_option_puts_the_previous_run_beside_this_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    pytester.runpytest("--resilience-report=old").assert_outcomes(passed=5, failed=1)
    result = pytester.runpytest("--resilience-report=new", "--resilience-compare=old/report.json")
    result.assert_outcomes(passed=5, failed=1)
    html = (pytester.path / "new" / "report.html").read_text(encoding="utf-8")
    assert '<section id="comparison">' in html
    assert "<p class=\"pass\">0 regression(s)" in html  # the same suite, the same figures
    markdown = (pytester.path / "new" / "report.md").read_text(encoding="utf-8")
    assert "### Compared with the run of " in markdown
    bad = pytester.runpytest("--resilience-compare=nowhere/report.json")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--resilience-compare=nowhere/report.json: [Errno 2] No such file or directory" in \
        bad.stderr.str()


def test_junit_properties_are_clean_key_values(pytester: pytest.Pytester) -> None:
    import xml.etree.ElementTree as ET

    pytester.makepyfile(SUITE + """

from faults import Action

def test_faulted(faults, history):
    faults.inject("db.read", Action.returns(1))
    import faults as fp
    assert fp.failpoint("db.read") == 1
""")
    result = pytester.runpytest("--junitxml=junit.xml", "--resilience-seed=5")
    result.assert_outcomes(passed=6, failed=1)
    tree = ET.parse(pytester.path / "junit.xml")
    properties = {
        case.get("name"): [(p.get("name"), p.get("value")) for p in case.iter("property")]
        for case in tree.iter("testcase")}
    for props in properties.values():
        for name, value in props:
            assert name.startswith(("resilience:", "sla:")), name
            assert not value.startswith(("{", "[")), (name, value)
    assert ("resilience:faults:failpoint", "1") in properties["test_faulted"]
    assert ("resilience:seed", "5") not in properties["test_faulted"]  # a derived seed
    assert ("sla:max<1ms", "FAIL: max=2ms breaks max<1ms (30 samples)") in \
        properties["test_broken"]
