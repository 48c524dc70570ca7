"""Writing the rendered reports: ``report.md`` and ``report.html`` beside ``report.json``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_rendered"]


def write_rendered(report: Mapping[str, Any], directory: Path, *,
                   baseline: Mapping[str, Any] | None = None) -> list[Path]:
    """Write ``report.md`` and ``report.html`` for ``report`` into ``directory``
    (``baseline``: a previous run to compare with); returns their paths."""
    from pytest_resilience.report._html import render_html
    from pytest_resilience.report._markdown import render_markdown

    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / "report.md"
    html = directory / "report.html"
    markdown.write_text(render_markdown(report, baseline=baseline), encoding="utf-8")
    html.write_text(render_html(report, baseline=baseline), encoding="utf-8")
    return [markdown, html]
