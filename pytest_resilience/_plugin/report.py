"""Writes ``report.json``, ``report.md`` and ``report.html`` into ``--resilience-report=DIR``.

Controller only (never on an xdist worker). ``report.md`` is also appended to
``$GITHUB_STEP_SUMMARY`` when that variable is set. pytest-benchmark results are folded
into the report, and our quantiles go into its JSON ``extra_info``.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience._plugin.state import get_state


def _environment(config: pytest.Config) -> dict[str, Any]:
    workers = getattr(config.option, "numprocesses", None)
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "pytest": pytest.__version__,
        "cpu_count": os.cpu_count(),
        "xdist_workers": workers if isinstance(workers, int) else 0,
    }


def build_report(config: pytest.Config) -> dict[str, Any]:
    """The report as plain builtins, from the session's per-test records."""
    from pytest_resilience.report._json import build_report as build

    session = get_state(config)
    operations = [
        {"operation": op, "variant": variant, **stats.to_dict()}
        for (op, variant), stats in sorted(session.operations.items())
    ]
    return build(
        seed=session.seed,
        seed_source=session.seed_source,
        environment=_environment(config),
        records=session.records,
        operations=operations,
        lost_workers=sorted(set(session.lost_workers)),
        benchmarks=session.benchmarks,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write_reports(config: pytest.Config, directory: Path) -> list[Path]:
    """Write the three report files into ``directory``; returns their paths."""
    from pytest_resilience.report._html import render_html
    from pytest_resilience.report._json import write_json
    from pytest_resilience.report._markdown import render_markdown

    directory.mkdir(parents=True, exist_ok=True)
    report = build_report(config)
    markdown = render_markdown(report)
    paths = [
        write_json(report, directory / "report.json"),
        directory / "report.md",
        directory / "report.html",
    ]
    paths[1].write_text(markdown, encoding="utf-8")
    paths[2].write_text(render_html(report), encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown)
    return paths


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = get_state(config)
    if state.report_dir is None or hasattr(config, "workerinput"):
        return
    state.report_paths += map(str, write_reports(config, state.report_dir))


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]
) -> None:
    """Add our quantiles to pytest-benchmark's JSON and fold its results into ours."""
    from pytest_resilience.sla._histogram import LatencyHistogram
    from pytest_resilience.sla._recorder import LADDER

    folded = []
    for bench in output_json.get("benchmarks", []):
        stats = bench.get("stats", {})
        histogram = LatencyHistogram()
        data = stats.get("data") or []
        if data:
            histogram.record_many(data)
        percentiles = {name: histogram.quantile(q) for name, q in LADDER}
        bench.setdefault("extra_info", {})["resilience"] = {
            "percentiles": percentiles,
            "alpha": histogram.alpha,
            "samples": histogram.count,
        }
        folded.append(
            {
                "fullname": bench.get("fullname"),
                "rounds": stats.get("rounds"),
                "mean": stats.get("mean"),
                "percentiles": percentiles,
            }
        )
    get_state(config).benchmarks = folded


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    for path in get_state(config).report_paths:
        terminalreporter.write_line(f"resilience report: {path}")
