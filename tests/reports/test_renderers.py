"""Markdown and HTML renderers on hand-built reports: escaping, truncation, what the
charts draw (and do not), comparison, chaos, coverage, errors by type."""

from __future__ import annotations

import copy
import re
from typing import Any

from pytest_resilience.report._html import render_html
from pytest_resilience.report._json import summarise
from pytest_resilience.report._markdown import MAX_BYTES, render_markdown
from pytest_resilience.report._svg import COLOURS
from pytest_resilience.sla._recorder import OperationStats


def _verdict(budget: str, metric: str, threshold: float, observed: float | None, *,
             passed: bool | None, reason: str = "") -> dict[str, Any]:
    return {"budget": budget, "metric": metric, "operation": None, "threshold": threshold,
            "observed": observed, "passed": passed, "reason": reason or budget}


def _report(nodeids: list[str], reason: str = "max=2ms breaks max<1ms", *,
            samples: int = 2_000, scale: float = 0.001) -> dict[str, Any]:
    stats = OperationStats()
    stats.latency.record_many([scale * (1 + i % 7) for i in range(samples)])
    tests = [
        {
            "nodeid": n,
            "outcome": "failed",
            "duration": 0.5,
            "faults": {},
            "verdicts": [],
            "failure": {"phase": "call", "message": reason},
            "sla": {"budgets": [_verdict("max<1ms", "max", 0.001, 0.002, passed=False,
                                         reason=reason)], "operations": {"a<b>": {}}},
        }
        for n in nodeids
    ]
    return {
        "seed": 1,
        "seed_source": "option",
        "datetime": "2026-01-01T00:00:00+00:00",
        "environment": {"python": "3.11"},
        "lost_workers": ["gw1"],
        "summary": summarise(tests),
        "tests": tests,
        "operations": [{"operation": "a<b>", "variant": "baseline", **stats.to_dict()}],
    }


def _chart(html: str, label: str) -> str:
    start = html.index(f'aria-label="{label}"')
    return html[start:html.index("</svg>", start)]


def test_markdown_escapes_pipes_and_names_lost_workers() -> None:
    text = render_markdown(_report(["t.py::test[a|b]"]))
    assert "`t.py::test[a\\|b]`" in text
    assert "**Lost workers** (their tests' records are missing): gw1" in text
    assert "| `a<b>` | baseline | 2000 | 0 |" in text
    assert text.rstrip().splitlines()[-3].endswith("| 7ms | ❌ `max<1ms` |")  # budgets per op


def test_markdown_stays_under_the_step_summary_limit() -> None:
    text = render_markdown(_report([f"t.py::test_{i}" for i in range(20_000)]))
    assert len(text.encode("utf-8")) <= MAX_BYTES
    assert text.endswith("… truncated: see report.json / report.html for every row.\n")
    assert text.startswith(
        "## ❌ pytest-resilience: 20000 of 20000 tests failed · 20000 of 20000 SLA budgets not met")


def test_html_escapes_names_and_labels_percentile_decades() -> None:
    html = render_html(_report(["t.py::test_<script>"], reason="<b>x</b>"))
    assert html.count("<script>") == 1  # the page's own script, not the test's name
    assert "t.py::test_&lt;script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    chart = _chart(html, "a&lt;b&gt;: latency by percentile")
    assert re.findall(r'text-anchor="middle">(p[^<]*)', chart) == ["p0", "p90", "p99", "p99.9"]
    assert "worker gw1 was lost" in html
    assert '<div class="badge">FAILED</div>' in html


def test_a_quantile_the_tables_call_na_is_not_drawn() -> None:
    report = _report(["t.py::test"], samples=160)  # p90 needs 100 samples, p95 200
    html = render_html(report)
    assert "| 160 | 0 | 4.003ms | n/a | n/a | n/a | 7ms |" in render_markdown(report)
    points = re.findall(r"<title>baseline (p[0-9.]+):", _chart(html, "a&lt;b&gt;: latency by "
                                                                     "percentile"))
    assert points == ["p0", "p25", "p50", "p75", "p90"]


def test_latency_budgets_are_drawn_and_rate_budgets_only_listed() -> None:
    report = _report(["t.py::test"])
    report["tests"][0]["sla"]["budgets"].append(
        _verdict("error_rate<1%", "error_rate", 0.01, 0.0, passed=True))
    html = render_html(report)
    chart = _chart(html, "a&lt;b&gt;: latency by percentile")
    assert 'data-budget="max&lt;1ms" data-verdict="broken"' in chart
    assert "error_rate" not in chart
    assert "<code>error_rate&lt;1%</code>: met" in html


def test_the_failure_leads_with_its_faults_and_replay_line() -> None:
    report = _report(["t.py::test_x"], reason="ValueError: bad row")
    report["tests"][0]["failure"].update(faults=["failpoint:db.read"],
                                         replay="pytest 't.py::test_x' --resilience-seed=1")
    report["tests"][0]["faults"] = {"failpoint": 2}
    html = render_html(report)
    failures = html[html.index('id="failures"'):html.index('id="tests"')]
    assert "<dt>faults active</dt><dd>failpoint:db.read</dd>" in failures
    assert "<dt>faults fired</dt><dd>failpoint 2</dd>" in failures
    assert "pytest &#x27;t.py::test_x&#x27; --resilience-seed=1" in failures
    errors = html[html.index('id="errors"'):]
    assert "<td><code>ValueError</code></td><td>1</td>" in errors


def test_chaos_failures_show_the_minimal_plan_and_coverage_renders_a_matrix() -> None:
    report = _report(["t.py::test_chaos"])
    report["tests"][0]["chaos"] = {
        "plans": 40, "failures": 1, "fired": {"db.read": 3},
        "plan": {"faults": [{"failpoint": "db.read"}]}, "replay": "pytest x --resilience-replay=p",
        "error": "chaos: after 40 plan(s), the body raised ValueError"}
    report["tests"][0]["coverage"] = {"db.read": {"raise": 3, "delay": 0}}
    report["tests"][0]["faults_armed"] = {"failpoint": 1}
    report["tests"][0]["faults"] = {"failpoint": 3, "gremlin": 1}  # a family of the user's
    html = render_html(report)
    chaos = html[html.index('id="chaos"'):html.index('id="coverage"')]
    assert "<td>40</td>" in chaos
    assert "&quot;failpoint&quot;: &quot;db.read&quot;" in chaos
    assert "pytest x --resilience-replay=p" in chaos
    coverage = html[html.index('id="coverage"'):]
    assert '<tr class=""><td>failpoint</td><td>1</td><td>1</td><td>3</td></tr>' in coverage
    assert coverage.count("<td>failpoint</td>") == 1  # each family once
    assert '<tr class=""><td>gremlin</td><td>1</td><td>0</td><td>1</td></tr>' in coverage
    assert '<tr class="zero"><td>network</td><td>0</td>' in coverage
    assert "<th>raise</th><th>delay</th>" in coverage
    assert '<td class="zero">0</td>' in coverage


def test_comparison_highlights_regressions() -> None:
    old = _report(["t.py::test_a", "t.py::test_b"])
    old["tests"][1]["outcome"] = "passed"
    old["tests"][0]["sla"]["budgets"][0].update(passed=True, observed=0.0009)
    new = copy.deepcopy(_report(["t.py::test_a", "t.py::test_b"], scale=0.002))
    html = render_html(new, baseline=old)
    section = html[html.index('id="comparison"'):html.index('id="tests"')]
    # test_b now fails, test_a's budget broke, p50/p90/p95/p99 doubled
    assert "6 regression(s)" in section
    assert ('<tr class="regression"><td><code>t.py::test_b</code></td><td>outcome</td>'
            "<td>n/a</td><td>n/a</td><td>passed → failed</td>") in section
    assert "<td>met → broken</td>" not in section  # the change column shows the figures
    assert "<td>+122.2%</td><td>regression</td>" in section
    text = render_markdown(new, baseline=old)
    assert "### Compared with the run of 2026-01-01T00:00:00+00:00" in text
    assert "| `a<b> [baseline]` | p50 | 4.003ms | 7.981ms | +99.4% |" in text
    assert "<td>error_rate</td><td>0.00%</td><td>0.00%</td><td>±0</td><td></td>" in section
    assert render_html(new).count('id="comparison"') == 0


def test_zero_second_samples_are_drawn_in_the_first_bin_of_the_log_axes() -> None:
    """Virtual time that did not move gives 0 s samples; a log axis has no zero (the
    histogram raised a math domain error on them)."""
    report = _report(["t.py::test"], samples=300, scale=0.0)
    html = render_html(report)
    histogram = _chart(html, "a&lt;b&gt;: latency histogram")
    assert re.findall(r"<title>baseline: (100\.0%) of samples in", histogram) == ["100.0%"]


def test_the_percentile_chart_overlays_the_faults_variant_on_the_baseline() -> None:
    report = _report(["t.py::test"])
    faulted = OperationStats()
    faulted.latency.record_many([0.01 * (1 + i % 7) for i in range(2_000)])
    report["operations"].append({"operation": "a<b>", "variant": "faults",
                                 **faulted.to_dict()})
    chart = _chart(render_html(report), "a&lt;b&gt;: latency by percentile")
    for variant in ("baseline", "faults"):
        assert (f'<polyline class="series" data-variant="{variant}" fill="none" '
                f'stroke="{COLOURS[variant]}"') in chart
    # 40ms and 4ms, each within the histogram's ±0.25%
    assert re.findall(r"<title>faults p50: ([^<]*)</title>", chart) == ["39.93ms"]
    assert re.findall(r"<title>baseline p50: ([^<]*)</title>", chart) == ["4.003ms"]
    assert f'fill="{COLOURS["faults"]}"/><text x="88" y="44" class="tick">faults</text>' in chart


def test_the_over_time_chart_draws_calls_per_second_with_errors_in_black() -> None:
    report = _report(["t.py::test"])
    # 10 calls in the first 0.09 s (2 failed, during a fault), then 5 calls 0.2 s apart
    samples = [[i * 0.009, "a<b>", 0.001, i >= 2, i < 4] for i in range(10)] + [
        [3.0 + i * 0.2, "a<b>", 0.001, True, False] for i in range(5)]
    report["tests"][0]["sla"]["samples"] = samples
    report["tests"][0]["fault_windows"] = [["network", "proxy", 0.0, 0.03]]
    chart = _chart(render_html(report), "t.py::test: a&lt;b&gt; over time")
    assert "calls per second (black: errors)" in chart
    bars = re.findall(r"<title>([^<]*calls/s[^<]*)</title>", chart)
    # 40 bins over 3.8 s: 0.095 s each; 1 call per bin is 10.53 calls/s
    assert bars == ["105.3 calls/s (10 calls, 2 errors)"] + [
        "10.53 calls/s (1 call, 0 errors)"] * 5
    assert sum(int(b.split("(")[1].split(" ")[0]) for b in bars) == 15
    assert sum(int(b.split(", ")[1].split(" ")[0]) for b in bars) == 2
    assert chart.count('fill="#000" fill-opacity="0.6"') == 1  # the one bin with errors
    assert '<g class="fault-window" data-family="network">' in chart


def _passing(budget_passed: bool | None) -> dict[str, Any]:
    report = _report(["t.py::test_a"])
    test = report["tests"][0]
    test.update(outcome="passed")
    test["sla"]["budgets"][0].update(passed=budget_passed)
    report["lost_workers"] = []
    report["summary"] = summarise(report["tests"])
    return report


def test_the_markdown_headline_is_green_only_when_everything_passed() -> None:
    text = render_markdown(_passing(True))
    assert text.startswith(
        "## ✅ pytest-resilience: all 1 tests passed · 1/1 SLA budgets met\n")


def test_an_unverified_budget_makes_the_headline_red() -> None:
    text = render_markdown(_passing(None))
    assert text.startswith(
        "## ❌ pytest-resilience: 1 of 1 SLA budgets not met (1 unverified)\n")
    assert "✅ pytest-resilience" not in text


def test_a_recovery_budget_lists_every_fault_window_with_its_time_to_recover() -> None:
    report = _report(["t.py::test_recovers"])
    windows = [
        {"budget": "answer: error_rate<25%", "operation": "answer", "window": [100.0, 103.0],
         "samples": 50, "recovered_after": 7.5},
        {"budget": "answer: error_rate<25%", "operation": "answer", "window": [153.0, 156.0],
         "samples": 40, "recovered_after": 21.0},
        {"budget": "answer: error_rate<25%", "operation": "answer", "window": [196.0, 197.0],
         "samples": 4, "recovered_after": None},
        {"budget": "answer: error_rate<25%", "operation": "answer", "window": [201.0, 202.0],
         "samples": 0, "recovered_after": None},
    ]
    report["tests"][0]["sla"]["budgets"].append({
        **_verdict("answer: error_rate<25%, recovery<15s", "recovery", 15.0, 21.0,
                   passed=False, reason="answer: error_rate<25%: back inside 21s after the "
                   "fault window t=153s..156s (breaks recovery<15s)"),
        "windows": windows})
    expected = ["t=100s..103s: back inside 7.5s", "t=153s..156s: back inside 21s (over 15s)",
                "t=196s..197s: not recovered (still outside the budget at the last of 4 "
                "samples)", "t=201s..202s: not recovered (no sample after the window)"]
    html = render_html(report)
    budgets = html[html.index('id="budgets"'):]
    assert ('(breaks recovery&lt;15s)<ul class="windows">'
            + "".join(f"<li>{line}</li>" for line in expected) + "</ul></td>") in budgets
    assert budgets.count('<ul class="windows">') == 1  # only under the recovery verdict
    text = render_markdown(report)
    section = text[text.index("#### Time to recover per fault window"):]
    assert section.splitlines()[2:7] == [
        "- `t.py::test_recovers` `answer: error_rate<25%, recovery<15s`:",
        *(f"  - {line}" for line in expected)]
