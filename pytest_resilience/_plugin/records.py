"""Per-test records: built from the test's history, merged with the test's outcome.

``history_part(history)`` reads one test's history (faults by family, fault windows,
checker verdicts, SLA budget verdicts, chaos results, a timeline) into plain builtins.
``RecordCollector`` (on the xdist controller too) merges each test's phases into one
record: outcome, duration, the failure's message and replay command, and that part.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.state import RECORD_KEY, ResilienceSession

if TYPE_CHECKING:
    from pytest_resilience import History

__all__ = ["RecordCollector", "faults_at_failure", "history_part"]

#: Rows kept in a record's timeline and fault windows (the rest are counted, not kept).
TIMELINE_LIMIT = 500


def history_part(history: History) -> dict[str, Any]:
    """What a report shows of one test's history, as plain builtins."""
    from pytest_resilience.kinds import (
        CHAOS_RUN,
        CHECK_VERDICT,
        FAULT_ARMED,
        FAULT_DISARMED,
        FAULT_FIRED,
        SLA_BUDGET,
        SLA_SAMPLE,
    )

    fired: Counter[str] = Counter()
    armed: Counter[str] = Counter()
    windows: list[list[Any]] = []
    open_windows: dict[str, list[list[Any]]] = {}
    verdicts: list[dict[str, Any]] = []
    budgets: list[dict[str, Any]] = []
    chaos: dict[str, Any] | None = None
    timeline: list[list[Any]] = []
    kinds: Counter[str] = Counter()
    for event in history.snapshot():
        kind = event.kind
        kinds[kind] += 1
        if kind == FAULT_FIRED:
            fired[str(event.attrs.get("family", "unknown"))] += 1
        elif kind == FAULT_ARMED:
            family = str(event.attrs.get("family", "unknown"))
            armed[family] += 1
            window = [family, event.source, event.time, None]
            open_windows.setdefault(event.source, []).append(window)
            if len(windows) < TIMELINE_LIMIT:
                windows.append(window)
        elif kind == FAULT_DISARMED and open_windows.get(event.source):
            open_windows[event.source].pop(0)[3] = event.time
        elif kind == CHECK_VERDICT:
            verdicts.append(dict(event.attrs))
        elif kind == SLA_BUDGET:
            budgets.append(dict(event.attrs))
        elif kind == CHAOS_RUN:
            chaos = dict(event.attrs)
        if kind != SLA_SAMPLE and len(timeline) < TIMELINE_LIMIT:
            timeline.append([event.time, str(kind), event.source])
    part: dict[str, Any] = {
        "clock": type(history.clock).__name__ if history.clock is not None else None,
        "events": len(history),
        "kinds": dict(sorted(kinds.items())),
        "faults": dict(sorted(fired.items())),
        "faults_armed": dict(sorted(armed.items())),
        "fault_windows": windows,
        "verdicts": verdicts,
        "timeline": timeline,
    }
    if budgets:
        part["sla_budgets"] = budgets
    if chaos is not None:
        part["chaos"] = chaos
    if fired or chaos is not None:  # a fault or chaos test: what it exercised, and how
        from pytest_resilience._coverage import coverage_matrix

        part["coverage"] = coverage_matrix(history.snapshot())
    return part


def faults_at_failure(history: History) -> list[str]:
    """The faults active when the test body raised: those still active, and those the
    exception's way out undid (disarmed after the body's last other event)."""
    from pytest_resilience.kinds import FAULT_DISARMED

    active = set(history.faults_active())
    for event in reversed(history.snapshot()):
        if event.kind == FAULT_DISARMED:
            active.add(event.source)
        elif not event.kind.startswith("fault."):
            break
    return sorted(active)


_PHASE_ORDER = ("setup", "call", "teardown")


class RecordCollector:
    """Merges each test's phase reports and harness record into the session's records.

    One per session, registered on that session's plugin manager (nested pytester
    sessions never share state); runs on the xdist controller, which sees every report.
    """

    def __init__(self, session: ResilienceSession) -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.session.records.get(report.nodeid)
        if record is None:
            record = self.session.records[report.nodeid] = {
                "nodeid": report.nodeid, "outcome": "passed", "duration": 0.0,
            }
        record["duration"] = round(record["duration"] + float(report.duration), 6)
        record["outcome"] = _outcome(record["outcome"], report)
        if report.failed and "failure" not in record:
            record["failure"] = {
                "phase": report.when if report.when in _PHASE_ORDER else "call",
                "message": _message(report),
                "replay": f"pytest '{report.nodeid}' --resilience-seed={self.session.seed}",
            }
        parts = [v for k, v in report.user_properties if k == RECORD_KEY and isinstance(v, dict)]
        if parts:
            # The record travelled here as a user property; JUnit XML gets clean
            # key/values in its place.
            report.user_properties = [
                (k, v) for k, v in report.user_properties if k != RECORD_KEY
            ]
            for part in parts:
                self._merge(record, part)
            report.user_properties += _junit_properties(record)

    def _merge(self, record: dict[str, Any], part: dict[str, Any]) -> None:
        part = dict(part)
        sla = part.pop("sla", None)
        budgets = part.pop("sla_budgets", None)
        if isinstance(sla, dict):
            from pytest_resilience.sla._recorder import OperationStats

            for operation, variants in sla.get("operations", {}).items():
                for variant, data in variants.items():
                    stats = OperationStats.from_dict(data)
                    self.session.add_operation(operation, variant, stats)
                    variants[variant] = stats.to_dict(histogram=False)
            record["sla"] = sla
        if budgets:
            record.setdefault("sla", {"operations": {}})["budgets"] = budgets
        failure_faults = part.pop("failure_faults", None)
        record.update(part)
        failure = record.get("failure")
        if failure is not None:
            if failure_faults is not None:
                failure["faults"] = failure_faults
            replay = (record.get("chaos") or {}).get("replay")
            if replay:
                failure["replay"] = replay


def _junit_properties(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The record's headline as JUnit XML ``<property>`` key/values (strings)."""
    props = [(f"resilience:faults:{family}", str(n))
             for family, n in record.get("faults", {}).items()]
    if "seed" in record:
        props.append(("resilience:seed", str(record["seed"])))
    chaos = record.get("chaos")
    if chaos:
        props.append(("resilience:chaos:plans", str(chaos.get("plans", 0))))
    return props


def _outcome(current: str, report: pytest.TestReport) -> str:
    """pytest's outcome words: passed, failed, error, skipped, xfailed, xpassed."""
    if current in ("failed", "error"):
        return current
    wasxfail = hasattr(report, "wasxfail")
    if report.failed:
        return "error" if report.when in ("setup", "teardown") else "failed"
    if report.skipped:
        return "xfailed" if wasxfail else "skipped"
    if report.when == "call":
        return "xpassed" if wasxfail else "passed"
    return current


def _message(report: pytest.TestReport) -> str:
    """The failure's one-paragraph message (the crash line, else the report's text)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    text = message if isinstance(message, str) and message else report.longreprtext
    return text.strip()[:4000]
