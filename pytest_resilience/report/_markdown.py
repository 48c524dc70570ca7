"""``report.md``: a compact Markdown summary sized for a CI step summary.

It leads with the verdict and the failures (message, faults active, replay command);
the headline is green only when every test passed and every budget held.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_resilience.report._recovery_windows import recovery_windows
from pytest_resilience.sla._budgets import format_seconds

__all__ = ["MAX_BYTES", "first_line", "headline", "render_markdown"]

#: GitHub refuses a step summary over 1 MiB; stay well under it.
MAX_BYTES = 512 * 1024
_LADDER = ("p50", "p95", "p99", "p99.9")
_BAD = ("failed", "error")
_MARK = {True: "✅", False: "❌", None: "⚠️"}


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else format_seconds(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _families(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{family} {n}" for family, n in counts.items()) or "none"


def first_line(failure: Mapping[str, Any], limit: int = 300) -> str:
    """A failure message's first line, cut at ``limit`` characters."""
    line = str(failure.get("message", "")).strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def headline(report: Mapping[str, Any]) -> str:
    """One line: ✅ only when every test passed and every budget held (a budget left
    unverified, e.g. too few samples for its quantile, is not met: ❌)."""
    s = report["summary"]
    budgets = s["budgets"]
    bad = s["failed"] + s["errors"]
    if s["ok"]:
        if s["passed"] == s["tests"]:
            tests = f"all {s['tests']} tests passed" if s["tests"] else "no tests ran"
        else:
            tests = f"{s['tests']} tests, none failed (" + ", ".join(
                f"{s[k]} {k}" for k in ("passed", "skipped", "xfailed", "xpassed") if s.get(k)
            ) + ")"
        parts = [tests]
        if budgets["total"]:
            parts.append(f"{budgets['passed']}/{budgets['total']} SLA budgets met"
                         + _expected(budgets))
        return "✅ pytest-resilience: " + " · ".join(parts)
    parts = []
    if bad:
        parts.append(f"{bad} of {s['tests']} tests failed")
    broken = budgets["failed"] + budgets["unverified"]
    if broken:
        unverified = f" ({budgets['unverified']} unverified)" if budgets["unverified"] else ""
        parts.append(f"{broken} of {budgets['total']} SLA budgets not met{unverified}"
                     + _expected(budgets))
    if report.get("lost_workers"):
        parts.append(f"{len(report['lost_workers'])} worker(s) lost")
    return "❌ pytest-resilience: " + " · ".join(parts)


def _expected(budgets: Mapping[str, Any]) -> str:
    count = int(budgets.get("expected", 0))
    return f" ({count} broken as an xfail test expects)" if count else ""


def render_markdown(report: Mapping[str, Any], *,
                    baseline: Mapping[str, Any] | None = None) -> str:
    """The report as GitHub-flavoured Markdown, truncated under ``MAX_BYTES``
    (``baseline``: a previous run's report, whose regressions follow the failures)."""
    s = report["summary"]
    counts = ", ".join(f"{s[k]} {k}" for k in ("passed", "failed", "errors", "skipped",
                                               "xfailed", "xpassed") if s.get(k))
    lines = [
        f"## {headline(report)}",
        "",
        f"tests: {s['tests']} ({counts or 'none'}) · faults fired: "
        f"{_families(s['faults_fired'])} · seed `{report['seed']}` ({report['seed_source']})",
    ]
    if report["lost_workers"]:
        lines.append(
            f"\n**Lost workers** (their tests' records are missing): "
            f"{', '.join(report['lost_workers'])}"
        )
    lines += _failures(report)
    if baseline is not None:
        lines += _comparison(report, baseline)
    for section in (_budgets, _verdicts, _chaos, _operations):
        lines += section(report)
    text = "\n".join(lines) + "\n"
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        cut = encoded[: MAX_BYTES - 200].decode("utf-8", "ignore").rsplit("\n", 1)[0]
        text = cut + "\n\n… truncated: see report.json / report.html for every row.\n"
    return text


def _failures(report: Mapping[str, Any]) -> list[str]:
    failures = [t for t in report["tests"] if t["outcome"] in _BAD]
    if not failures:
        return []
    lines = ["", "### Failures", ""]
    for test in failures:
        failure = test.get("failure", {})
        lines.append(f"- ❌ `{_cell(test['nodeid'])}` ({test['outcome']} in "
                     f"{failure.get('phase', '?')}): {_cell(first_line(failure))}")
        if failure.get("faults"):
            lines.append(f"  - faults active: {', '.join(failure['faults'])}")
        if test.get("faults"):
            lines.append(f"  - faults fired: {_families(test['faults'])}")
        if failure.get("replay"):
            lines.append(f"  - replay: `{_cell(failure['replay'])}`")
    return lines


def _budgets(report: Mapping[str, Any]) -> list[str]:
    rows = [(t["nodeid"], v) for t in report["tests"]
            for v in (t.get("sla") or {}).get("budgets", [])]
    if not rows:
        return []
    lines = ["", "### SLA budgets", "", "| test | budget | observed | verdict |",
             "|---|---|---|---|"]
    for nodeid, v in sorted(rows, key=lambda row: row[1]["passed"] is True):
        state = {True: "✅ pass", False: "❌ fail", None: "⚠️ unverified"}[v["passed"]]
        lines.append(
            f"| `{_cell(nodeid)}` | `{_cell(v['budget'])}` | {_cell(v['reason'])} | {state} |"
        )
    recovery = [(nodeid, v, windows) for nodeid, v in rows
                if (windows := recovery_windows(v))]
    if recovery:
        lines += ["", "#### Time to recover per fault window", ""]
        for nodeid, v, windows in recovery:
            lines.append(f"- `{_cell(nodeid)}` `{_cell(v['budget'])}`:")
            lines += [f"  - {window}" for window in windows]
    return lines


def _verdicts(report: Mapping[str, Any]) -> list[str]:
    rows = [(t["nodeid"], v) for t in report["tests"] for v in t.get("verdicts", [])]
    if not rows:
        return []
    lines = ["", "### Checker verdicts", "", "| test | checker | verdict |", "|---|---|---|"]
    for nodeid, v in sorted(rows, key=lambda row: row[1]["passed"] is True):
        state = "✅ pass" if v["passed"] else f"❌ {_cell(v['explanation'])}"
        lines.append(f"| `{_cell(nodeid)}` | {_cell(v['checker'])} | {state} |")
    return lines


def _chaos(report: Mapping[str, Any]) -> list[str]:
    tests = [t for t in report["tests"] if t.get("chaos")]
    if not tests:
        return []
    lines = ["", "### Chaos runs", "", "| test | plans | failing | fired |", "|---|---:|---:|---|"]
    for test in tests:
        c = test["chaos"]
        lines.append(f"| `{_cell(test['nodeid'])}` | {c.get('plans', 0)} | "
                     f"{c.get('failures', 0)} | {_families(c.get('fired') or {})} |")
    return lines


def _operations(report: Mapping[str, Any]) -> list[str]:
    operations = report["operations"]
    if not operations:
        return []
    from pytest_resilience.report._operations import budget_lines

    head = " | ".join(_LADDER)
    lines = [
        "",
        "### Operations",
        "",
        f"| operation | variant | n | errors | {head} | max | budgets |",
        "|---|---|---:|---:|" + "---:|" * len(_LADDER) + "---:|---|",
    ]
    for op in operations:
        cells = " | ".join(_seconds(op["percentiles"].get(p)) for p in _LADDER)
        budgets = ", ".join(
            f"{_MARK[b.passed]} `{_cell(b.text)}`"
            for b in budget_lines(report["tests"], op["operation"], latency_only=False))
        lines.append(
            f"| `{_cell(op['operation'])}` | {op['variant']} | {op['count']} | "
            f"{op['errors']} | {cells} | {_seconds(op['max'])} | {budgets} |"
        )
    lines.append(
        f"\nQuantiles are within ±{operations[0]['alpha']:.2%}; n/a: fewer "
        "samples than 10/(1-q). `faults`: samples taken while a fault was active."
    )
    return lines


def _comparison(report: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[str]:
    from pytest_resilience.report._comparison import THRESHOLD, compare_runs

    comparison = compare_runs(report, baseline)
    deltas = [d for d in (*comparison.outcomes, *comparison.budgets, *comparison.percentiles)
              if d.regressed]
    lines = ["", f"### Compared with the run of {comparison.baseline_datetime}", "",
             f"{len(deltas)} regression(s) (worse by more than {THRESHOLD:g}%, a budget no "
             "longer met, or a test that passed and now fails)."]
    if deltas:
        lines += ["", "| what | field | before | after | change |", "|---|---|---:|---:|---:|"]
        lines += [f"| `{_cell(d.subject)}` | {d.field} | {d.show(d.before)} | "
                  f"{d.show(d.after)} | {d.change()} |" for d in deltas]
    return lines
