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

from pytest_resilience import _validate

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
    # a budget or verdict an xfail test broke is what that test expects: counted apart
    # ("expected"), never as failed
    budget_counts = Counter({"total": 0, "passed": 0, "failed": 0, "unverified": 0,
                             "expected": 0})
    verdict_counts = Counter({"total": 0, "passed": 0, "failed": 0, "expected": 0})
    for test in tests:
        xfailed = test.get("outcome") == "xfailed"
        for budget in (test.get("sla") or {}).get("budgets", []):
            met = budget["passed"]
            budget_counts["total"] += 1
            budget_counts["passed" if met is True else "expected" if xfailed
                          else "failed" if met is False else "unverified"] += 1
        for verdict in test.get("verdicts", []):
            verdict_counts["total"] += 1
            verdict_counts["passed" if verdict["passed"] is True else "expected" if xfailed
                           else "failed"] += 1
        fired.update({k: int(v) for k, v in test.get("faults", {}).items()})
    chaos = [t["chaos"] for t in tests if t.get("chaos")]
    return {
        "tests": len(tests),
        "passed": outcomes["passed"],
        "failed": outcomes["failed"],
        "errors": outcomes["error"],
        "skipped": outcomes["skipped"],
        "xfailed": outcomes["xfailed"],
        "xpassed": outcomes["xpassed"],
        "faults_fired": dict(sorted(fired.items())),
        "budgets": dict(budget_counts),
        "verdicts": dict(verdict_counts),
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
    """Read a ``report.json``; refuses another schema version.

    A path of the wrong type is a ``TypeError``, text that is not a JSON object a
    ``ValueError`` naming ``path``; a missing file is the ``OSError`` of reading it.
    """
    file = _validate.path(path, "path", what="a report path",
                          accepted="the path of a report.json file")
    if file.is_dir():
        raise ValueError(f"path={str(file)!r} is not a report.json. Pass the path of a "
                         "report.json file, not a directory.")
    text = file.read_text(encoding="utf-8")
    try:
        data: dict[str, Any] = json.loads(text)
    except (ValueError, RecursionError) as exc:  # malformed, too deep, a 5,000-digit int
        problem = f"{type(exc).__name__}: {exc}"
    else:
        problem = "" if isinstance(data, dict) else \
            f"it holds a JSON {type(data).__name__}, not an object"
    if problem:
        raise ValueError(f"path={str(file)!r} is not a report.json: {problem}. Pass a "
                         "report.json written by --resilience-report.")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"path={str(file)!r} has schema_version={_validate.show(version)}. This version "
            f"reads schema_version={SCHEMA_VERSION} reports; regenerate the report."
        )
    return data
