"""Markdown and HTML renderers on hand-built reports: escaping, truncation, chart axes."""

from __future__ import annotations

import re
from typing import Any

from pytest_resilience.report._html import render_html
from pytest_resilience.report._json import summarise
from pytest_resilience.report._markdown import MAX_BYTES, render_markdown
from pytest_resilience.sla._recorder import OperationStats


def _report(nodeids: list[str], reason: str = "max=2ms breaks max<1ms") -> dict[str, Any]:
    stats = OperationStats()
    stats.latency.record_many([0.001 * (1 + i % 7) for i in range(2_000)])
    verdict = {
        "budget": "max<1ms",
        "metric": "max",
        "operation": None,
        "threshold": 0.001,
        "observed": 0.002,
        "passed": False,
        "reason": reason,
    }
    tests = [
        {
            "nodeid": n,
            "outcome": "failed",
            "duration": 0.5,
            "faults": {},
            "verdicts": [],
            "failure": {"phase": "call", "message": reason},
            "sla": {"budgets": [verdict], "operations": {}},
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


def test_markdown_escapes_pipes_and_names_lost_workers() -> None:
    text = render_markdown(_report(["t.py::test[a|b]"]))
    assert "`t.py::test[a\\|b]`" in text
    assert "**Lost workers** (their tests' records are missing): gw1" in text
    assert "| `a<b>` | baseline | 2000 | 0 |" in text


def test_markdown_stays_under_the_step_summary_limit() -> None:
    text = render_markdown(_report([f"t.py::test_{i}" for i in range(20_000)]))
    assert len(text.encode("utf-8")) <= MAX_BYTES
    assert text.endswith("… truncated: see report.json / report.html for every row.\n")
    assert text.startswith(
        "## ❌ pytest-resilience: 20000 of 20000 tests failed · 20000 of 20000 SLA budgets not met")


def test_html_escapes_names_and_labels_percentile_decades() -> None:
    html = render_html(_report(["t.py::test_<script>"], reason="<b>x</b>"))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "a&lt;b&gt;: latency by percentile" in html
    labels = re.findall(r'text-anchor="middle">([^<]*)', html)
    assert labels == ["p0", "p90", "p99", "p99.9"]  # 2,000 samples reach 1/(1-p) = 1000
    assert "worker gw1 was lost" in html
