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


COMPARE_OPTION = "--resilience-compare"


def pytest_addoption(parser: pytest.Parser) -> None:
    from pytest_resilience._plugin.progress import CHOICES, PROGRESS_OPTION

    parser.getgroup("resilience").addoption(
        PROGRESS_OPTION,
        action="store",
        choices=CHOICES,
        default="auto",
        dest="resilience_progress",
        help="show chaos runs' progress (plans done, failures, plans/s, time left): auto "
        "(default: on a terminal, not under -q), always or never.",
    )
    parser.getgroup("resilience").addoption(
        COMPARE_OPTION,
        action="store",
        default=None,
        dest="resilience_compare",
        metavar="OLD/report.json",
        help="with --resilience-report: compare this run with a previous report.json "
        "(deltas per budget and percentile, regressions highlighted).",
    )


def _baseline(config: pytest.Config) -> dict[str, Any] | None:
    """The report named by ``--resilience-compare`` (read at start-up: a bad path is a
    usage error before any test runs)."""
    path = config.getoption("resilience_compare", None)
    if not path:
        return None
    from pytest_resilience.report._json import load_report

    try:
        return load_report(path)
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"{COMPARE_OPTION}={path}: {exc}") from None


def load_baseline(config: pytest.Config) -> None:
    """Load the ``--resilience-compare`` report into the session (controller only), at
    configure: a bad file is a usage error before any test runs."""
    if not hasattr(config, "workerinput"):
        get_state(config).baseline = _baseline(config)


def write_reports(config: pytest.Config, directory: Path) -> list[Path]:
    """Write the three report files into ``directory``; returns their paths."""
    from pytest_resilience.report._files import write_rendered
    from pytest_resilience.report._json import write_json

    directory.mkdir(parents=True, exist_ok=True)
    report = build_report(config)
    paths = [write_json(report, directory / "report.json")]
    paths += write_rendered(report, directory, baseline=get_state(config).baseline)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(paths[1].read_text(encoding="utf-8"))
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
