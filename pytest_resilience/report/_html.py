"""``report.html``: one self-contained page (inline CSS, SVG and a small script).

The verdict first (a banner), then failures (message, faults active, replay command),
every test (sortable, filterable), the operations (percentiles on log axes with budget
lines, histogram, latency and throughput over time with fault windows shaded), errors
by type, budgets and checks, chaos runs, fault coverage, the comparison with a previous
run, fault timelines and the environment. Each section is one function of the report
dict (``SECTIONS``); it returns ``""`` when it has nothing to show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from typing import Any

from pytest_resilience.report._assets import CSS, SCRIPT
from pytest_resilience.report._comparison import comparison_section
from pytest_resilience.report._operations import fault_timelines, operations_section
from pytest_resilience.report._sections import (
    budgets_section,
    chaos_section,
    coverage_section,
    environment_section,
    errors_section,
    failures_section,
    header_section,
    tests_section,
)

__all__ = ["SECTIONS", "render_html"]

Section = Callable[[Mapping[str, Any]], str]

#: (anchor, navigation label, section) in page order, after the verdict banner.
SECTIONS: tuple[tuple[str, str, Section], ...] = (
    ("failures", "Failures", failures_section),
    ("tests", "Tests", tests_section),
    ("operations", "Operations", operations_section),
    ("errors", "Errors", errors_section),
    ("budgets", "Budgets", budgets_section),
    ("chaos", "Chaos", chaos_section),
    ("coverage", "Coverage", coverage_section),
    ("timelines", "Timelines", fault_timelines),
)


def render_html(report: Mapping[str, Any], *, baseline: Mapping[str, Any] | None = None) -> str:
    """The whole report as one HTML document (``baseline``: a previous run's report dict
    to compare with)."""
    from pytest_resilience.report._markdown import headline

    parts = [(anchor, label, section(report)) for anchor, label, section in SECTIONS]
    compared = comparison_section(report, baseline)
    if compared:
        parts.insert(1, ("comparison", "Comparison", compared))
    shown = [(anchor, label, html) for anchor, label, html in parts if html]
    nav = "".join(f'<a href="#{anchor}">{label}</a>' for anchor, label, _ in shown)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(headline(report))}</title><style>{CSS}</style></head><body>"
        f'<nav aria-label="sections"><a href="#verdict">Verdict</a>{nav}'
        '<a href="#environment">Environment</a></nav><main>'
        + header_section(report)
        + "".join(html for _, _, html in shown)
        + environment_section(report)
        + f"</main><script>{SCRIPT}</script></body></html>\n"
    )
