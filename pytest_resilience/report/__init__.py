"""Run reports: ``report.json`` (schema-versioned), ``report.md``, ``report.html``, compare."""

from __future__ import annotations

from pytest_resilience.report._compare import Regression, Rule, compare_reports
from pytest_resilience.report._html import render_html
from pytest_resilience.report._json import SCHEMA, SCHEMA_VERSION, build_report, load_report
from pytest_resilience.report._markdown import render_markdown

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Regression",
    "Rule",
    "build_report",
    "compare_reports",
    "load_report",
    "render_html",
    "render_markdown",
]
