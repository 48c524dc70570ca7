"""The per-operation part of ``report.html``: percentiles, histogram, latency and
throughput over time with fault windows shaded, and fault timelines of other tests.

Reads only the report dict. A chart shows only figures the tables show: a quantile the
sample count cannot support (the tables' n/a) is not drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_resilience.report._svg import (
    BudgetLine,
    Window,
    fault_timeline_svg,
    histogram_svg,
    percentile_svg,
    timeseries_svg,
)
from pytest_resilience.sla._budgets import format_seconds
from pytest_resilience.sla._histogram import ALPHA, LatencyHistogram

__all__ = ["budget_lines", "fault_timelines", "operations_section", "spectrum"]

#: Quantiles on the percentile chart (each drawn only when the samples support it).
SPECTRUM = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999)
_LADDER = ("p50", "p90", "p95", "p99", "p99.9")
_LATENCY_METRICS = ("max", "mean", "min")
#: Tests drawn over time per operation, and fault timelines, at most (the rest are listed).
CHART_LIMIT = 12


def spectrum(histogram: LatencyHistogram) -> list[tuple[float, float]]:
    """``(p, seconds)`` for each spectrum quantile the sample count supports."""
    points = []
    for q in SPECTRUM:
        value = histogram.quantile(q)
        if value is not None:
            points.append((q, value))
    return points


def _quantile(metric: str) -> float | None:
    if metric.startswith("p"):
        try:
            return float(metric[1:]) / 100
        except ValueError:
            return None
    return None


def budget_lines(tests: Sequence[Mapping[str, Any]], operation: str, *,
                 latency_only: bool = True) -> list[BudgetLine]:
    """Budgets about ``operation`` (named, or unnamed in a test that measured only it),
    one per budget text with its worst verdict: the latency ones (those a chart can
    draw), or every one with ``latency_only=False``."""
    order = {False: 0, None: 1, True: 2}
    lines: dict[str, BudgetLine] = {}
    for test in tests:
        sla = test.get("sla") or {}
        measured = set(sla.get("operations") or {})
        for b in sla.get("budgets", []):
            about = b.get("operation")
            if about != operation and not (about is None and measured == {operation}):
                continue
            metric = str(b["metric"])
            q = _quantile(metric)
            if latency_only and q is None and metric not in _LATENCY_METRICS:
                continue
            line = BudgetLine(str(b["budget"]), float(b["threshold"]), q, b["passed"])
            seen = lines.get(line.text)
            if seen is None or order[line.passed] < order[seen.passed]:
                lines[line.text] = line
    return list(lines.values())


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else format_seconds(value)


def _table(ops: Sequence[Mapping[str, Any]], budgets: Sequence[BudgetLine]) -> str:
    head = "".join(f"<th>{p}</th>" for p in _LADDER)
    rows = []
    for op in ops:
        cells = "".join(f"<td>{_seconds(op['percentiles'].get(p))}</td>" for p in _LADDER)
        rate = op.get("error_rate")
        thr = op.get("throughput")
        rows.append(
            f"<tr><td>{escape(op['variant'])}</td><td>{op['count']}</td><td>{op['errors']}"
            f"{'' if rate is None else f' ({rate:.1%})'}</td>{cells}"
            f"<td>{_seconds(op.get('max'))}</td>"
            f"<td>{'n/a' if thr is None else f'{thr:.4g}/s'}</td></tr>")
    verdicts = "".join(
        f'<li class="{ {True: "pass", False: "fail", None: "unverified"}[b.passed] }">'
        f"<code>{escape(b.text)}</code>: "
        f"{ {True: 'met', False: 'broken', None: 'unverified'}[b.passed] }</li>"
        for b in budgets)
    return (f'<table class="compact"><tr><th>variant</th><th>n</th><th>errors</th>{head}'
            f"<th>max</th><th>throughput</th></tr>{''.join(rows)}</table>"
            + (f'<ul class="budgets">{verdicts}</ul>' if verdicts else ""))


def _windows(test: Mapping[str, Any]) -> list[Window]:
    return [Window(str(f), str(s), float(a), None if b is None else float(b))
            for f, s, a, b in test.get("fault_windows") or []]


def _span(times: Sequence[float], windows: Sequence[Window]) -> tuple[float, float]:
    points = list(times) + [w.start for w in windows] + [
        w.end for w in windows if w.end is not None]
    return min(points), max(points)


def _over_time(tests: Sequence[Mapping[str, Any]], operation: str,
               budgets: Sequence[BudgetLine]) -> str:
    charts: list[str] = []
    more: list[str] = []
    for test in tests:
        samples = [s for s in ((test.get("sla") or {}).get("samples") or [])
                   if s[1] == operation]
        if not samples:
            continue
        if len(charts) >= CHART_LIMIT:
            more.append(test["nodeid"])
            continue
        times = [float(s[0]) for s in samples]
        if max(times) == min(times):
            charts.append(f"<p><code>{escape(test['nodeid'])}</code>: every sample at "
                          f"+{times[0]:.4g}s on the test's clock (it did not move while "
                          "measuring), so there is no time line to draw.</p>")
            continue
        windows = _windows(test)
        span = _span(times, windows)
        title = f"{test['nodeid']}: {operation} over time"
        charts.append(f'<figure><figcaption><code>{escape(test["nodeid"])}</code>'
                      f"{' · faults shaded' if windows else ''}</figcaption>"
                      f"{timeseries_svg(samples, windows, budgets, span, title)}</figure>")
    if more:
        charts.append(f"<p>{len(more)} more test(s) measured {escape(operation)}: "
                      f"{escape(', '.join(more))}.</p>")
    return "".join(charts)


def operations_section(report: Mapping[str, Any]) -> str:
    """One block per operation: table, percentile chart, histogram, over time."""
    by_op: dict[str, list[Mapping[str, Any]]] = {}
    for op in report["operations"]:
        by_op.setdefault(op["operation"], []).append(op)
    if not by_op:
        return ""
    blocks = []
    for name, ops in sorted(by_op.items()):
        hists = {op["variant"]: LatencyHistogram.from_dict(op["histogram"]) for op in ops}
        budgets = budget_lines(report["tests"], name)
        listed = budget_lines(report["tests"], name, latency_only=False)
        series = {v: pts for v, h in hists.items() if (pts := spectrum(h))}
        buckets = {v: h.buckets() for v, h in hists.items() if h.count}
        charts = []
        if series:
            chart = percentile_svg(series, budgets, f"{name}: latency by percentile")
            charts.append("<figure><figcaption>latency by percentile (log axes)"
                          f"</figcaption>{chart}</figure>")
        if buckets:
            charts.append(f"<figure><figcaption>latency histogram</figcaption>"
                          f"{histogram_svg(buckets, budgets, f'{name}: latency histogram')}"
                          "</figure>")
        blocks.append(
            f'<section class="operation" id="op-{escape(name)}"><h3><code>{escape(name)}</code>'
            f"</h3>{_table(ops, listed)}<div class=\"charts\">{''.join(charts)}</div>"
            f"{_over_time(report['tests'], name, budgets)}</section>")
    alpha = report["operations"][0].get("alpha", ALPHA)
    return ('<section id="operations"><h2>Operations</h2><p class="note">Quantiles within '
            f"±{alpha:.2%}; n/a (and not drawn): fewer samples than 10/(1-q). "
            "<em>faults</em>: samples taken while a fault was active.</p>"
            + "".join(blocks) + "</section>")


def fault_timelines(report: Mapping[str, Any]) -> str:
    """Fault windows and events of tests that armed faults but measured no operation."""
    figures: list[str] = []
    more: list[str] = []
    for test in report["tests"]:
        windows = _windows(test)
        if not windows or (test.get("sla") or {}).get("samples"):
            continue
        if len(figures) >= CHART_LIMIT:
            more.append(test["nodeid"])
            continue
        events = [e for e in test.get("timeline") or [] if not str(e[1]).startswith("fault.")]
        span = _span([float(e[0]) for e in test.get("timeline") or []], windows)
        figures.append(
            f'<figure><figcaption><code>{escape(test["nodeid"])}</code></figcaption>'
            f"{fault_timeline_svg(windows, events, span, test['nodeid'] + ': faults')}"
            "</figure>")
    if not figures:
        return ""
    tail = (f"<p>{len(more)} more: {escape(', '.join(more))}.</p>" if more else "")
    return ('<section id="timelines"><h2>Fault timelines</h2><p class="note">Tests that '
            "armed faults without measuring an operation: each fault's active span, and the "
            "test's other events.</p>" + "".join(figures) + tail + "</section>")
