"""Inline SVG charts for ``report.html``, written by hand (no dependency, no script).

Every chart scales to its container (``viewBox``), puts its title in the page rather than
in the picture (so a long test name wraps instead of being cut), and gives each mark a
``<title>`` tooltip. Latency axes are logarithmic: a tail 100x the median stays visible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from pytest_resilience.sla._budgets import format_seconds

__all__ = [
    "COLOURS",
    "BudgetLine",
    "Window",
    "fault_timeline_svg",
    "histogram_svg",
    "percentile_svg",
    "timeseries_svg",
]

COLOURS = {"baseline": "#1f77b4", "faults": "#d62728"}
BUDGET_COLOUR = "#6a1b9a"
WINDOW_FILL = "#ffb74d"
_W = 720
_LEFT, _RIGHT, _TOP = 64, 20, 16
_VERDICT = {True: "met", False: "broken", None: "unverified"}


@dataclass(frozen=True)
class BudgetLine:
    """A latency budget to draw: its text, threshold (seconds), the quantile it is about
    (None for max/mean/min) and its verdict."""

    text: str
    threshold: float
    quantile: float | None
    passed: bool | None


@dataclass(frozen=True)
class Window:
    """A fault's active span (``end`` None: still active when the test ended)."""

    family: str
    source: str
    start: float
    end: float | None


class _LogScale:
    """Maps values in ``[lo, hi]`` (> 0) onto pixels ``[a, b]`` logarithmically."""

    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        lo = max(lo, 1e-9)
        hi = max(hi, lo * 10)
        self.lo, self.hi = math.log10(lo), math.log10(hi)
        self.a, self.b = a, b

    def __call__(self, value: float) -> float:
        frac = (math.log10(max(value, 1e-12)) - self.lo) / (self.hi - self.lo)
        return self.a + frac * (self.b - self.a)

    def ticks(self) -> list[float]:
        """Decades inside the range, with 2 and 5 between them when there are few."""
        first, last = math.floor(self.lo), math.ceil(self.hi)
        steps = (1, 2, 5) if last - first <= 3 else (1,)
        return [m * 10.0**d for d in range(first, last + 1) for m in steps
                if self.lo - 1e-9 <= math.log10(m * 10.0**d) <= self.hi + 1e-9]


class _LinScale:
    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        self.lo, self.hi = lo, hi if hi > lo else lo + 1.0
        self.a, self.b = a, b

    def __call__(self, value: float) -> float:
        return self.a + (value - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def _open(height: int, label: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height}" '
            f'class="chart" role="img" aria-label="{escape(label)}">']


def _latency_axis(parts: list[str], scale: _LogScale, x0: float, x1: float) -> None:
    for tick in scale.ticks():
        y = scale(tick)
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{x0 - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                     f"{escape(format_seconds(tick))}</text>")


def _legend(parts: list[str], names: Sequence[str], x: float, y: float) -> None:
    for i, name in enumerate(names):
        colour = COLOURS.get(name, "#555")
        parts.append(f'<rect x="{x}" y="{y + i * 16 - 9}" width="10" height="10" '
                     f'fill="{colour}"/><text x="{x + 14}" y="{y + i * 16}" class="tick">'
                     f"{escape(name)}</text>")


def _budget(parts: list[str], line: BudgetLine, y: float, x0: float, x1: float, *,
            x_at: float | None) -> None:
    verdict = _VERDICT[line.passed]
    parts.append(
        f'<g class="budget-line" data-budget="{escape(line.text)}" data-verdict="{verdict}">'
        f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{BUDGET_COLOUR}" '
        'stroke-width="2" stroke-dasharray="7 4"/>'
        f'<text x="{x1 - 4}" y="{y - 5:.1f}" class="tick budget-label" text-anchor="end" '
        f'fill="{BUDGET_COLOUR}">budget {escape(line.text)} ({verdict})</text>'
        + (f'<circle cx="{x_at:.1f}" cy="{y:.1f}" r="5" fill="none" stroke="{BUDGET_COLOUR}" '
           'stroke-width="2"/>' if x_at is not None else "")
        + f"<title>budget {escape(line.text)}: {verdict}</title></g>"
    )


def _x_of_quantile(q: float) -> float:
    return math.log10(1.0 / (1.0 - q))


def percentile_svg(series: Mapping[str, Sequence[tuple[float, float]]],
                   budgets: Sequence[BudgetLine], label: str) -> str:
    """Latency (log) against ``1/(1-p)`` (log), one line per variant, budgets dashed.

    ``series`` maps a variant to ``(p, seconds)`` points; only points the sample count
    supports belong there (the tables' n/a is never drawn)."""
    height = 280
    bottom = height - 36
    points = [v for pts in series.values() for _, v in pts] + [b.threshold for b in budgets]
    right = max([_x_of_quantile(p) for pts in series.values() for p, _ in pts] +
                [_x_of_quantile(b.quantile) for b in budgets if b.quantile is not None] + [1.0])
    x = _LinScale(0.0, math.ceil(right - 1e-9), _LEFT, _W - _RIGHT)
    y = _LogScale(min(points) / 1.5, max(points) * 1.5, bottom, _TOP)
    parts = _open(height, label)
    _latency_axis(parts, y, _LEFT, _W - _RIGHT)
    for decade in range(int(x.hi) + 1):
        tick_label = "p0" if decade == 0 else f"p{100 - 100 / 10**decade:g}"
        parts.append(f'<line x1="{x(decade):.1f}" y1="{bottom}" x2="{x(decade):.1f}" '
                     f'y2="{bottom + 5}" class="axis"/><text x="{x(decade):.1f}" '
                     f'y="{bottom + 18}" class="tick" text-anchor="middle">{tick_label}</text>')
    parts.append(f'<line x1="{_LEFT}" y1="{bottom}" x2="{_W - _RIGHT}" y2="{bottom}" '
                 'class="axis"/><text x="{0}" y="{1}" class="tick" text-anchor="end">'
                 'percentile (1/(1-p), log)</text>'.format(_W - _RIGHT, height - 4))
    for name, pts in sorted(series.items()):
        colour = COLOURS.get(name, "#555")
        coords = " ".join(f"{x(_x_of_quantile(p)):.1f},{y(v):.1f}" for p, v in pts)
        parts.append(f'<polyline class="series" data-variant="{escape(name)}" fill="none" '
                     f'stroke="{colour}" stroke-width="2" points="{coords}"/>')
        for p, v in pts:
            parts.append(f'<circle cx="{x(_x_of_quantile(p)):.1f}" cy="{y(v):.1f}" r="3" '
                         f'fill="{colour}"><title>{escape(name)} p{100 * p:.4g}: '
                         f"{escape(format_seconds(v))}</title></circle>")
    for line in budgets:
        at = x(_x_of_quantile(line.quantile)) if line.quantile is not None else None
        _budget(parts, line, y(line.threshold), _LEFT, _W - _RIGHT, x_at=at)
    _legend(parts, sorted(series), _LEFT + 10, _TOP + 12)
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(series: Mapping[str, Sequence[tuple[float, int]]],
                  budgets: Sequence[BudgetLine], label: str, *, bins: int = 40) -> str:
    """Share of samples per log-spaced latency bin, variants overlaid; budgets as
    vertical dashed lines. ``series`` maps a variant to its ``(value, count)`` buckets."""
    height = 240
    bottom = height - 36
    # A log axis has no zero: a 0 s sample (virtual time that did not move) counts in the
    # first bin, whose left edge is the smallest positive value.
    values = [v for buckets in series.values() for v, c in buckets if c and v > 0] + [
        b.threshold for b in budgets if b.threshold > 0]
    lo, hi = (min(values), max(values)) if values else (1e-6, 1e-3)
    if hi <= lo * 1.01:
        lo, hi = lo / 1.5, hi * 1.5
    edges = [math.log10(lo) + (math.log10(hi) - math.log10(lo)) * i / bins
             for i in range(bins + 1)]
    shares: dict[str, list[float]] = {}
    for name, buckets in series.items():
        counts = [0] * bins
        total = sum(c for _, c in buckets) or 1
        for value, count in buckets:
            pos = (math.log10(max(value, lo)) - edges[0]) / (edges[-1] - edges[0]) * bins
            counts[min(bins - 1, max(0, int(pos)))] += count
        shares[name] = [c / total for c in counts]
    top = max((s for row in shares.values() for s in row), default=1.0) or 1.0
    x = _LogScale(lo, hi, _LEFT, _W - _RIGHT)
    x.lo, x.hi = edges[0], edges[-1]
    y = _LinScale(0.0, top * 1.1, bottom, _TOP)
    parts = _open(height, label)
    for frac in (0.0, 0.5, 1.0):
        parts.append(f'<line x1="{_LEFT}" y1="{y(top * frac):.1f}" x2="{_W - _RIGHT}" '
                     f'y2="{y(top * frac):.1f}" class="grid"/><text x="{_LEFT - 6}" '
                     f'y="{y(top * frac) + 4:.1f}" class="tick" text-anchor="end">'
                     f"{top * frac:.0%}</text>")
    for tick in x.ticks():
        parts.append(f'<text x="{x(tick):.1f}" y="{bottom + 18}" class="tick" '
                     f'text-anchor="middle">{escape(format_seconds(tick))}</text>'
                     f'<line x1="{x(tick):.1f}" y1="{bottom}" x2="{x(tick):.1f}" '
                     f'y2="{bottom + 5}" class="axis"/>')
    width = (_W - _RIGHT - _LEFT) / bins
    for name, row in sorted(shares.items()):
        colour = COLOURS.get(name, "#555")
        for i, share in enumerate(row):
            if not share:
                continue
            left = _LEFT + i * width
            parts.append(
                f'<rect x="{left:.1f}" y="{y(share):.1f}" width="{width:.1f}" '
                f'height="{bottom - y(share):.1f}" fill="{colour}" fill-opacity="0.55">'
                f"<title>{escape(name)}: {share:.1%} of samples in "
                f"{escape(format_seconds(10 ** edges[i]))} to "
                f"{escape(format_seconds(10 ** edges[i + 1]))}</title></rect>")
    parts.append(f'<line x1="{_LEFT}" y1="{bottom}" x2="{_W - _RIGHT}" y2="{bottom}" '
                 'class="axis"/>')
    for i, line in enumerate(budgets):
        bx = x(line.threshold)
        verdict = _VERDICT[line.passed]
        right_half = bx > (_LEFT + _W - _RIGHT) / 2
        parts.append(
            f'<g class="budget-line" data-budget="{escape(line.text)}" '
            f'data-verdict="{verdict}"><line x1="{bx:.1f}" y1="{_TOP}" x2="{bx:.1f}" '
            f'y2="{bottom}" stroke="{BUDGET_COLOUR}" stroke-width="2" '
            f'stroke-dasharray="7 4"/><text x="{bx - 4 if right_half else bx + 4:.1f}" '
            f'y="{_TOP + 10 + 14 * i}" class="tick budget-label" fill="{BUDGET_COLOUR}" '
            f'text-anchor="{"end" if right_half else "start"}">{escape(line.text)}</text>'
            f"<title>budget {escape(line.text)}: {verdict}</title></g>")
    _legend(parts, sorted(series), _LEFT + (_W - _RIGHT - _LEFT) * 0.45, _TOP + 10)
    parts.append(f'<text x="{_W - _RIGHT}" y="{height - 4}" class="tick" text-anchor="end">'
                 "latency (log); bars: share of each variant's samples</text></svg>")
    return "".join(parts)


def _windows(parts: list[str], windows: Sequence[Window], x: _LinScale, *, end: float,
             top: float, bottom: float) -> None:
    """Shade each fault window between ``top`` and ``bottom``, labelled by family."""
    for w in windows:
        left, right = x(max(w.start, x.lo)), x(min(end if w.end is None else w.end, x.hi))
        width = max(right - left, 2.0)
        until = "the end" if w.end is None else f"+{w.end - x.lo:.4g}s"
        parts.append(
            f'<g class="fault-window" data-family="{escape(w.family)}">'
            f'<rect x="{left:.1f}" y="{top}" width="{width:.1f}" height="{bottom - top:.1f}" '
            f'fill="{WINDOW_FILL}" fill-opacity="0.35"/>'
            f'<text x="{left + 3:.1f}" y="{top + 11}" class="tick window-label">'
            f"{escape(w.family)}</text><title>{escape(w.family)} fault {escape(w.source)}: "
            f"+{w.start - x.lo:.4g}s to {until}</title></g>")


def timeseries_svg(samples: Sequence[Sequence[object]], windows: Sequence[Window],
                   budgets: Sequence[BudgetLine], span: tuple[float, float], label: str) -> str:
    """Latency of each sample over time (log, top) and calls per interval (bottom), with
    fault windows shaded across both. ``samples`` rows: ``[t, op, seconds, ok, faults]``."""
    height, bins = 330, 40
    lat_bottom, thr_top, thr_bottom = 186, 214, 296
    start, end = span
    if end <= start:
        end = start + 1.0
    x = _LinScale(start, end, _LEFT, _W - _RIGHT)
    ok_values = [float(str(s[2])) for s in samples if s[3]]
    values = ok_values + [b.threshold for b in budgets]
    parts = _open(height, label)
    _windows(parts, windows, x, end=end, top=_TOP, bottom=thr_bottom)
    y = _LogScale(min(values or [1e-3]) / 1.5, max(values or [1e-3]) * 1.5, lat_bottom, _TOP)
    _latency_axis(parts, y, _LEFT, _W - _RIGHT)
    for t, _op, seconds, ok, faulted in samples:
        cx = x(float(str(t)))
        if ok:
            colour = COLOURS["faults" if faulted else "baseline"]
            parts.append(f'<circle cx="{cx:.1f}" cy="{y(float(str(seconds))):.1f}" r="2" '
                         f'fill="{colour}" fill-opacity="0.7"/>')
        else:
            parts.append(f'<path d="M{cx - 3:.1f},{_TOP + 3} l6,6 m0,-6 l-6,6" '
                         'stroke="#000" stroke-width="1.5"><title>error</title></path>')
    for line in budgets:
        _budget(parts, line, y(line.threshold), _LEFT, _W - _RIGHT, x_at=None)
    calls, errors = [0] * bins, [0] * bins
    for row in samples:
        i = min(bins - 1, max(0, int((float(str(row[0])) - start) / (end - start) * bins)))
        calls[i] += 1
        errors[i] += 0 if row[3] else 1
    width = (end - start) / bins
    peak = max(calls) or 1
    ty = _LinScale(0.0, peak / width, thr_bottom, thr_top)
    bar = (_W - _RIGHT - _LEFT) / bins
    for i, (n, bad) in enumerate(zip(calls, errors, strict=True)):
        if not n:
            continue
        left = _LEFT + i * bar
        parts.append(f'<rect x="{left:.1f}" y="{ty(n / width):.1f}" width="{bar - 1:.1f}" '
                     f'height="{thr_bottom - ty(n / width):.1f}" fill="#607d8b">'
                     f"<title>{n / width:.4g} calls/s ({n} call{'s' * (n != 1)}, {bad} "
                     f"error{'s' * (bad != 1)})</title></rect>")
        if bad:
            parts.append(f'<rect x="{left:.1f}" y="{ty(bad / width):.1f}" '
                         f'width="{bar - 1:.1f}" height="{thr_bottom - ty(bad / width):.1f}" '
                         'fill="#000" fill-opacity="0.6"/>')
    parts.append(
        f'<line x1="{_LEFT}" y1="{thr_bottom}" x2="{_W - _RIGHT}" y2="{thr_bottom}" '
        f'class="axis"/><text x="{_LEFT - 6}" y="{thr_top + 8}" class="tick" '
        f'text-anchor="end">{peak / width:.3g}/s</text><text x="{_LEFT - 6}" '
        f'y="{thr_bottom}" class="tick" text-anchor="end">0/s</text>'
        f'<text x="{_LEFT}" y="{thr_bottom + 16}" class="tick">+0s</text>'
        f'<text x="{_W - _RIGHT}" y="{thr_bottom + 16}" class="tick" text-anchor="end">'
        f"+{end - start:.4g}s</text>"
        f'<text x="{_LEFT + 4}" y="{thr_top - 6}" class="tick">calls per second '
        "(black: errors)</text></svg>")
    return "".join(parts)


def fault_timeline_svg(windows: Sequence[Window], events: Sequence[Sequence[object]],
                       span: tuple[float, float], label: str) -> str:
    """One lane per fault source: its active windows shaded, and the test's other events
    (``[t, kind, source]``) as ticks on a lane of their own."""
    sources = list(dict.fromkeys(w.source for w in windows))
    lanes = [*sources, "events"]
    lane = 22
    height = _TOP + lane * len(lanes) + 30
    start, end = span
    if end <= start:
        end = start + 1.0
    left = 190
    x = _LinScale(start, end, left, _W - _RIGHT)
    parts = _open(height, label)
    for i, name in enumerate(lanes):
        y = _TOP + i * lane
        parts.append(f'<text x="{left - 6}" y="{y + 14}" class="tick" text-anchor="end">'
                     f"{escape(name[:30])}</text>")
        if name == "events":
            for t, kind, source in events:
                tx = x(float(str(t)))
                parts.append(f'<rect x="{tx - 1:.1f}" y="{y + 3}" width="2" height="14" '
                             f'fill="#1f77b4"><title>{escape(str(kind))} [{escape(str(source))}]'
                             f" +{float(str(t)) - start:.4g}s</title></rect>")
            continue
        mine = [w for w in windows if w.source == name]
        _windows(parts, mine, x, end=end, top=y + 2, bottom=y + lane - 2)
    bottom = _TOP + lane * len(lanes)
    parts.append(f'<text x="{left}" y="{bottom + 16}" class="tick">+0s</text>'
                 f'<text x="{_W - _RIGHT}" y="{bottom + 16}" class="tick" text-anchor="end">'
                 f"+{end - start:.4g}s</text></svg>")
    return "".join(parts)
