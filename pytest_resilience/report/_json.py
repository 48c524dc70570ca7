"""``report.json``: the schema-versioned run report, built from the per-test records.

Top level: ``schema_version``, ``datetime``, run ``seed``/``seed_source``,
``environment``, ``summary`` (test outcomes, faults fired by family, budgets, checker
verdicts, chaos runs, ``ok``), ``tests`` (one record per test, built from its history),
``operations`` (SLA histograms merged per operation and variant), ``lost_workers``,
``benchmarks``. The JSON Schema ships beside this module (``report.schema.json``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "SCHEMA_VERSION", "build_report", "load_report", "summarise", "write_json"]

SCHEMA_VERSION = 2

#: JSON Schema (draft 2020-12) of ``report.json``, as shipped in ``report.schema.json``.
SCHEMA: dict[str, Any] = json.loads(
    resources.files("pytest_resilience.report").joinpath("report.schema.json").read_text(
        encoding="utf-8")
)

_OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def summarise(tests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The headline numbers of a run, from its per-test records alone."""
    outcomes = Counter(str(t.get("outcome")) for t in tests)
    fired: Counter[str] = Counter()
    budgets = [b for t in tests for b in (t.get("sla") or {}).get("budgets", [])]
    verdicts = [v for t in tests for v in t.get("verdicts", [])]
    chaos = [t["chaos"] for t in tests if t.get("chaos")]
    for test in tests:
        fired.update({k: int(v) for k, v in test.get("faults", {}).items()})
    budget_counts = {
        "total": len(budgets),
        "passed": sum(b["passed"] is True for b in budgets),
        "failed": sum(b["passed"] is False for b in budgets),
        "unverified": sum(b["passed"] is None for b in budgets),
    }
    return {
        "tests": len(tests),
        "passed": outcomes["passed"],
        "failed": outcomes["failed"],
        "errors": outcomes["error"],
        "skipped": outcomes["skipped"],
        "xfailed": outcomes["xfailed"],
        "xpassed": outcomes["xpassed"],
        "faults_fired": dict(sorted(fired.items())),
        "budgets": budget_counts,
        "verdicts": {
            "total": len(verdicts),
            "passed": sum(v["passed"] is True for v in verdicts),
            "failed": sum(v["passed"] is not True for v in verdicts),
        },
        "chaos": {
            "tests": len(chaos),
            "plans": sum(int(c.get("plans", 0)) for c in chaos),
            "failures": sum(int(c.get("failures", 0)) for c in chaos),
        },
        "coverage": _merged_coverage(tests),
        "ok": (outcomes["failed"] + outcomes["error"] == 0
               and budget_counts["failed"] + budget_counts["unverified"] == 0),
    }


def _merged_coverage(tests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every fault or chaos test's coverage matrix side by side (each test's own cells,
    the worse status where two tests judged the same cell)."""
    from pytest_resilience._coverage import empty, union

    merged = empty()
    for test in tests:
        if test.get("coverage"):
            merged = union(merged, test["coverage"])
    return merged


def build_report(
    *,
    seed: int,
    seed_source: str,
    environment: Mapping[str, Any],
    records: Mapping[str, Mapping[str, Any]],
    operations: list[dict[str, Any]],
    lost_workers: list[str],
    benchmarks: list[dict[str, Any]],
    created: str,
) -> dict[str, Any]:
    """The report as plain builtins (see the module docstring for its shape)."""
    tests = [_test(records[nodeid]) for nodeid in sorted(records)]
    summary = summarise(tests)
    if lost_workers:
        summary["ok"] = False
    return {
        "schema_version": SCHEMA_VERSION,
        "datetime": created,
        "seed": seed,
        "seed_source": seed_source,
        "environment": dict(environment),
        "summary": summary,
        "tests": tests,
        "operations": operations,
        "lost_workers": list(lost_workers),
        "benchmarks": benchmarks,
    }


def _test(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record with every key the schema requires (tests without the harness have none
    of the history's keys)."""
    test = dict(record)
    test.setdefault("faults", {})
    test.setdefault("verdicts", [])
    test.setdefault("sla", None)
    return test


def write_json(report: Mapping[str, Any], path: Path) -> Path:
    """Write ``report`` as indented JSON."""
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a ``report.json``; refuses another schema version."""
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"path={str(path)!r} has schema_version={version!r}. This version reads "
            f"schema_version={SCHEMA_VERSION} reports; regenerate the report."
        )
    return data
