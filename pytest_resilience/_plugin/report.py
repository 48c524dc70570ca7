"""Writes ``report.json`` into ``--resilience-report=DIR`` at the end of the session."""

from __future__ import annotations

import json
import platform
import sys
from typing import Any

import pytest

from pytest_resilience._plugin.state import get_state

REPORT_SCHEMA_VERSION = 1


def build_report(config: pytest.Config) -> dict[str, Any]:
    """The report as plain builtins: seed, environment, per-test records, counters."""
    state = get_state(config)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "seed": state.seed,
        "seed_source": state.seed_source,
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "pytest": pytest.__version__,
        },
        "tests": [
            {"nodeid": nodeid, "outcome": state.outcomes.get(nodeid, "unknown"), **record}
            for nodeid, record in sorted(state.records.items())
        ],
        "counters": dict(sorted(state.counters.items())),
        "lost_workers": list(state.lost_workers),
    }


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = get_state(config)
    if state.report_dir is None or hasattr(config, "workerinput"):
        return
    state.report_dir.mkdir(parents=True, exist_ok=True)
    path = state.report_dir / "report.json"
    path.write_text(json.dumps(build_report(config), indent=2) + "\n", encoding="utf-8")
    config.stash[REPORT_PATHS] = [*config.stash.get(REPORT_PATHS, []), str(path)]


REPORT_PATHS = pytest.StashKey[list[str]]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    for path in config.stash.get(REPORT_PATHS, []):
        terminalreporter.write_line(f"resilience report: {path}")
