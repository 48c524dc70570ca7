"""``report.html``: one self-contained page with hand-written inline SVG charts.

Charts: a percentile spectrum per operation (latency against ``1/(1-p)`` on a log axis,
one line per variant: without and with faults) and, per test that recorded events, a
timeline of faults and state changes. No JavaScript, no external resources.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_resilience.sla._budgets import format_seconds
from pytest_resilience.sla._histogram import ALPHA, LatencyHistogram

__all__ = ["percentile_svg", "render_html", "timeline_svg"]

_W, _H, _PAD = 640, 260, 48
_COLOURS = {"baseline": "#1f77b4", "faults": "#d62728"}
_SPECTRUM = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999)
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px} h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3} .pass{color:#2a7d2a} .fail{color:#c62828;font-weight:bold}
.unverified{color:#b26a00} svg{background:#fcfcfc;border:1px solid #ddd;margin:6px 0}
code{font-size:13px}
"""


def _points(histogram: LatencyHistogram) -> list[tuple[float, float]]:
    """(log10(1/(1-p)), latency) for ladder points the sample count can support."""
    n = histogram.count
    return [
        (math.log10(1.0 / (1.0 - p)), histogram.quantile_unchecked(p))
        for p in _SPECTRUM
        if n and 1.0 / (1.0 - p) <= n
    ]


def percentile_svg(title: str, series: Mapping[str, LatencyHistogram]) -> str:
    """Percentile spectrum: one polyline per variant, x = 1/(1-p) on a log axis."""
    lines = {name: _points(h) for name, h in series.items() if h.count}
    top = max((y for pts in lines.values() for _, y in pts), default=0.0) or 1e-9
    right = max((x for pts in lines.values() for x, _ in pts), default=0.0) or 1.0
    left = _PAD + 24
    plot_w, plot_h = _W - left - _PAD, _H - 2 * _PAD

    def sx(x: float) -> float:
        return left + x / right * plot_w

    def sy(y: float) -> float:
        return _H - _PAD - y / top * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="20" font-size="14">{escape(title)}</text>',
        f'<line x1="{left}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#444"/>',
        f'<line x1="{left}" y1="{_PAD}" x2="{left}" y2="{_H - _PAD}" stroke="#444"/>',
    ]
    for decade in range(int(right + 1e-9) + 1):
        label = "p0" if decade == 0 else f"p{100 - 100 / 10**decade:g}"
        x = sx(decade)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_H - _PAD}" x2="{x:.1f}" y2="{_H - _PAD + 5}" '
            f'stroke="#444"/><text x="{x:.1f}" y="{_H - _PAD + 18}" font-size="11" '
            f'text-anchor="middle">{label}</text>'
        )
    for frac in (0.0, 0.5, 1.0):
        y = sy(top * frac)
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{escape(format_seconds(top * frac))}</text>"
        )
    for i, (name, pts) in enumerate(sorted(lines.items())):
        colour = _COLOURS.get(name, "#555")
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        for x, y in pts:
            pct = 100 * (1 - 10**-x)
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)} p{pct:.4g}: {escape(format_seconds(y))}</title></circle>"
            )
        parts.append(
            f'<rect x="{_W - _PAD - 90}" y="{_PAD + i * 18 - 10}" width="10" height="10" '
            f'fill="{colour}"/><text x="{_W - _PAD - 75}" y="{_PAD + i * 18}" '
            f'font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(title: str, rows: Sequence[Sequence[Any]]) -> str:
    """Events ``[time, kind, source]`` as marks on one lane per kind; faults in red."""
    kinds = sorted({str(r[1]) for r in rows})
    start = min(float(r[0]) for r in rows)
    span = (max(float(r[0]) for r in rows) - start) or 1.0
    lane = 20
    height = 2 * _PAD + lane * len(kinds)
    label_w = 150
    plot_w = _W - label_w - _PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="8" y="20" font-size="14">{escape(title)}</text>',
    ]
    for i, kind in enumerate(kinds):
        y = _PAD + i * lane
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 4}" font-size="11" text-anchor="end">'
            f'{escape(kind)}</text><line x1="{label_w}" y1="{y}" x2="{_W - _PAD}" y2="{y}" '
            'stroke="#e0e0e0"/>'
        )
    for t, kind, source in rows:
        x = label_w + (float(t) - start) / span * plot_w
        y = _PAD + kinds.index(str(kind)) * lane
        colour = "#d62728" if str(kind).startswith("fault.") else "#1f77b4"
        parts.append(
            f'<rect x="{x - 2:.1f}" y="{y - 6}" width="4" height="12" fill="{colour}">'
            f"<title>{escape(str(kind))} {escape(str(source))} at "
            f"+{float(t) - start:.6g}s</title></rect>"
        )
    axis_y = height - _PAD + 14
    parts.append(
        f'<text x="{label_w}" y="{axis_y}" font-size="11">+0s</text>'
        f'<text x="{_W - _PAD}" y="{axis_y}" font-size="11" text-anchor="end">'
        f"+{span:.6g}s</text></svg>"
    )
    return "".join(parts)


def _budget_rows(report: Mapping[str, Any]) -> str:
    rows = []
    for test in report["tests"]:
        for v in (test.get("sla") or {}).get("budgets", []):
            css = {True: "pass", False: "fail", None: "unverified"}[v["passed"]]
            rows.append(
                f"<tr><td><code>{escape(test['nodeid'])}</code></td>"
                f"<td><code>{escape(v['budget'])}</code></td><td>{escape(v['reason'])}</td>"
                f'<td class="{css}">{css}</td></tr>'
            )
    if not rows:
        return "<p>No SLA budgets in this run.</p>"
    head = "<tr><th>test</th><th>budget</th><th>observed</th><th>verdict</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _failures(report: Mapping[str, Any]) -> str:
    items = []
    for test in report["tests"]:
        if test["outcome"] not in ("failed", "error"):
            continue
        failure = test.get("failure", {})
        extra = ""
        if failure.get("faults"):
            extra += f"<br>faults active: {escape(', '.join(failure['faults']))}"
        if failure.get("replay"):
            extra += f"<br>replay: <code>{escape(failure['replay'])}</code>"
        items.append(
            f'<li><span class="fail">{escape(test["outcome"])}</span> '
            f"<code>{escape(test['nodeid'])}</code>: "
            f"{escape(failure.get('message', ''))}{extra}</li>"
        )
    return f"<h2>Failures</h2><ul>{''.join(items)}</ul>" if items else ""


def _tests_table(report: Mapping[str, Any]) -> str:
    rows = []
    for test in report["tests"]:
        css = "fail" if test["outcome"] in ("failed", "error") else "pass"
        fired = ", ".join(f"{k} {v}" for k, v in test.get("faults", {}).items())
        rows.append(
            f"<tr><td><code>{escape(test['nodeid'])}</code></td>"
            f'<td class="{css}">{escape(test["outcome"])}</td>'
            f"<td>{test['duration']:.3f}s</td><td>{escape(fired)}</td></tr>"
        )
    head = "<tr><th>test</th><th>outcome</th><th>duration</th><th>faults fired</th></tr>"
    return f"<h2>Tests</h2><table>{head}{''.join(rows)}</table>"


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one self-contained HTML document."""
    from pytest_resilience.report._markdown import headline

    summary = report["summary"]
    by_operation: dict[str, dict[str, LatencyHistogram]] = {}
    for op in report["operations"]:
        by_operation.setdefault(op["operation"], {})[op["variant"]] = LatencyHistogram.from_dict(
            op["histogram"]
        )
    charts = [
        percentile_svg(f"{name}: latency by percentile", series)
        for name, series in sorted(by_operation.items())
    ]
    timelines = [
        timeline_svg(
            f"{test['nodeid'].rsplit('::', 1)[-1]}: faults and state changes",
            test["timeline"],
        )
        for test in report["tests"]
        if test.get("timeline") and test.get("faults")
    ]
    lost = "".join(
        f'<p class="fail">worker {escape(w)} was lost: its tests are missing.</p>'
        for w in report["lost_workers"]
    )
    env = ", ".join(f"{escape(str(k))} {escape(str(v))}" for k, v in report["environment"].items())
    fired = ", ".join(f"{k} {v}" for k, v in summary["faults_fired"].items()) or "none"
    css = "pass" if summary["ok"] else "fail"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>pytest-resilience report</title><style>{_CSS}</style></head><body>"
        f'<h1 class="{css}">{escape(headline(report))}</h1>'
        f"<p>seed <code>{report['seed']}</code> ({escape(report['seed_source'])}) · faults "
        f"fired: {escape(fired)} · {escape(report['datetime'])}</p>{lost}"
        + _failures(report)
        + _tests_table(report)
        + f"<h2>Budgets</h2>{_budget_rows(report)}"
        "<h2>Latency percentiles</h2>"
        + ("".join(charts) or "<p>No operations were measured.</p>")
        + f"<p>Quantiles within ±{ALPHA:.2%} (log-bucket histogram); x axis: 1/(1-p), "
        "log scale.</p>"
        + ("<h2>Timelines</h2>" + "".join(timelines) if timelines else "")
        + f"<h2>Environment</h2><p>{env}</p></body></html>\n"
    )
