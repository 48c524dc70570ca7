"""``report.json``: the schema-versioned run report, built from plain builtins.

Top level: ``schema_version``, ``datetime``, run ``seed``/``seed_source``,
``environment``, ``verdict`` (budget counts), ``tests`` (outcome, harness record, SLA
budgets and quantiles), ``operations`` (merged histograms per operation and variant),
``faults`` and ``events`` summaries, ``counters``, ``lost_workers``, ``benchmarks``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "SCHEMA_VERSION", "build_report", "load_report", "write_json"]

SCHEMA_VERSION = 1

_NUM = {"type": ["number", "null"]}
_STATS = {
    "type": "object",
    "required": ["count", "errors", "error_rate", "percentiles", "alpha"],
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "errors": {"type": "integer", "minimum": 0},
        "error_rate": _NUM,
        "throughput": _NUM,
        "min": _NUM,
        "max": _NUM,
        "mean": _NUM,
        "alpha": {"type": "number"},
        "percentiles": {"type": "object", "additionalProperties": _NUM},
    },
}
_VERDICT = {
    "type": "object",
    "required": ["budget", "metric", "threshold", "observed", "passed", "reason"],
    "properties": {
        "budget": {"type": "string"},
        "metric": {"type": "string"},
        "operation": {"type": ["string", "null"]},
        "threshold": {"type": "number"},
        "observed": _NUM,
        "passed": {"type": ["boolean", "null"]},
        "reason": {"type": "string"},
    },
}
#: JSON Schema (draft 2020-12) of ``report.json``.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pytest-resilience report",
    "type": "object",
    "required": [
        "schema_version",
        "datetime",
        "seed",
        "seed_source",
        "environment",
        "verdict",
        "tests",
        "operations",
        "faults",
        "events",
        "counters",
        "lost_workers",
        "benchmarks",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "datetime": {"type": "string"},
        "seed": {"type": "integer"},
        "seed_source": {"type": "string"},
        "environment": {"type": "object", "required": ["python", "platform", "pytest"]},
        "verdict": {
            "type": "object",
            "required": ["budgets", "passed", "failed", "unverified"],
            "additionalProperties": {"type": "integer", "minimum": 0},
        },
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["nodeid", "outcome"],
                "properties": {
                    "nodeid": {"type": "string"},
                    "outcome": {"type": "string"},
                    "sla": {
                        "type": "object",
                        "required": ["budgets", "operations", "variant"],
                        "properties": {
                            "budgets": {"type": "array", "items": _VERDICT},
                            "operations": {"type": "object", "additionalProperties": _STATS},
                            "variant": {"enum": ["baseline", "faults"]},
                        },
                    },
                },
            },
        },
        "operations": {
            "type": "array",
            "items": {
                "allOf": [
                    _STATS,
                    {
                        "type": "object",
                        "required": ["operation", "variant", "histogram"],
                        "properties": {
                            "operation": {"type": "string"},
                            "variant": {"enum": ["baseline", "faults"]},
                            "histogram": {
                                "type": "object",
                                "required": ["v", "alpha", "count", "index", "counts"],
                            },
                        },
                    },
                ]
            },
        },
        "faults": {"type": "object", "required": ["fired", "tests_with_faults"]},
        "events": {"type": "object", "required": ["recorded", "kinds"]},
        "counters": {"type": "object", "additionalProperties": {"type": "integer"}},
        "lost_workers": {"type": "array", "items": {"type": "string"}},
        "benchmarks": {"type": "array", "items": {"type": "object"}},
    },
}


def build_report(
    *,
    seed: int,
    seed_source: str,
    environment: Mapping[str, Any],
    outcomes: Mapping[str, str],
    records: Mapping[str, Mapping[str, Any]],
    sla_tests: Mapping[str, Mapping[str, Any]],
    operations: list[dict[str, Any]],
    counters: Mapping[str, int],
    lost_workers: list[str],
    benchmarks: list[dict[str, Any]],
    created: str,
) -> dict[str, Any]:
    """The report as plain builtins (see the module docstring for its shape)."""
    tests = []
    for nodeid in sorted(set(records) | set(sla_tests)):
        entry: dict[str, Any] = {"nodeid": nodeid, "outcome": outcomes.get(nodeid, "unknown")}
        entry.update(records.get(nodeid, {}))
        if nodeid in sla_tests:
            entry["sla"] = dict(sla_tests[nodeid])
        tests.append(entry)
    verdicts = [v for t in sla_tests.values() for v in t.get("budgets", [])]
    kinds: Counter[str] = Counter(
        row[1] for t in sla_tests.values() for row in t.get("timeline", [])
    )
    fired = sum(int(r.get("faults_fired", 0)) for r in records.values())
    return {
        "schema_version": SCHEMA_VERSION,
        "datetime": created,
        "seed": seed,
        "seed_source": seed_source,
        "environment": dict(environment),
        "verdict": {
            "budgets": len(verdicts),
            "passed": sum(v["passed"] is True for v in verdicts),
            "failed": sum(v["passed"] is False for v in verdicts),
            "unverified": sum(v["passed"] is None for v in verdicts),
        },
        "tests": tests,
        "operations": operations,
        "faults": {
            "fired": fired,
            "tests_with_faults": sum(int(r.get("faults_fired", 0)) > 0 for r in records.values()),
        },
        "events": {
            "recorded": sum(int(r.get("events", 0)) for r in records.values()),
            "kinds": dict(sorted(kinds.items())),
        },
        "counters": dict(sorted(counters.items())),
        "lost_workers": list(lost_workers),
        "benchmarks": benchmarks,
    }


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
