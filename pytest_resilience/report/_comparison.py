"""A run against a previous one (``--resilience-compare=old/report.json``): deltas per
budget and per percentile, and tests whose outcome changed; regressions flagged.

A figure regresses when it got worse by more than ``threshold`` percent (latency and
error rate up, throughput down), a budget regresses when it was met and is not any
more, and a test regresses when it passed and now fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

from pytest_resilience.sla._budgets import format_seconds

__all__ = ["Comparison", "Delta", "compare_runs", "comparison_section"]

_FIELDS = ("p50", "p90", "p95", "p99", "p99.9", "error_rate", "throughput")
_BAD = ("failed", "error")
#: Percent a figure may worsen before it counts as a regression.
THRESHOLD = 10.0


@dataclass(frozen=True)
class Delta:
    """One figure in both runs."""

    subject: str
    field: str
    before: float | None
    after: float | None
    regressed: bool
    note: str = ""

    def change(self) -> str:
        """``+12.5%`` (or the note when a figure is missing or was zero)."""
        if self.before is None or self.after is None:
            return self.note or "n/a"
        if self.before == self.after:
            return "±0"
        if self.before == 0:
            return "from 0"
        return f"{(self.after / self.before - 1) * 100:+.1f}%"

    def show(self, value: float | None) -> str:
        """A value in this field's unit."""
        if value is None:
            return "n/a"
        if self.field == "error_rate":
            return f"{value:.2%}"
        if self.field == "throughput":
            return f"{value:.4g}/s"
        return format_seconds(value)


@dataclass
class Comparison:
    """Budgets, percentiles and outcomes of two runs side by side."""

    baseline_datetime: str
    budgets: list[Delta] = field(default_factory=list)
    percentiles: list[Delta] = field(default_factory=list)
    outcomes: list[Delta] = field(default_factory=list)

    @property
    def regressions(self) -> int:
        """How many deltas are regressions."""
        return sum(d.regressed for d in (*self.budgets, *self.percentiles, *self.outcomes))


def _worse(field_: str, before: float, after: float, threshold: float) -> bool:
    if field_ == "throughput":
        return after < before * (1 - threshold / 100)
    if before == 0:
        return after > 0
    return after > before * (1 + threshold / 100)


def _budgets(report: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(t["nodeid"], b["budget"]): b for t in report["tests"]
            for b in (t.get("sla") or {}).get("budgets", [])}


def compare_runs(report: Mapping[str, Any], baseline: Mapping[str, Any], *,
                 threshold: float = THRESHOLD) -> Comparison:
    """What changed from ``baseline`` to ``report`` (both report dicts)."""
    result = Comparison(str(baseline.get("datetime", "?")))
    old_budgets = _budgets(baseline)
    for key, now in sorted(_budgets(report).items()):
        then = old_budgets.get(key)
        if then is None:
            continue
        was, is_ = then["passed"], now["passed"]
        regressed = was is True and is_ is not True
        before, after = then.get("observed"), now.get("observed")
        if not regressed and before is not None and after is not None:
            regressed = is_ is not True and _worse(str(now["metric"]), before, after, threshold)
        word = {True: "met", False: "broken", None: "unverified"}
        result.budgets.append(Delta(f"{key[0]} {key[1]}", str(now["metric"]), before, after,
                                    regressed, f"{word[was]} → {word[is_]}"))
    old_ops = {(o["operation"], o["variant"]): o for o in baseline["operations"]}
    for op in report["operations"]:
        then = old_ops.get((op["operation"], op["variant"]))
        if then is None:
            continue
        for name in _FIELDS:
            before = then["percentiles"].get(name) if name.startswith("p") else then.get(name)
            after = op["percentiles"].get(name) if name.startswith("p") else op.get(name)
            if before is None and after is None:
                continue
            regressed = (before is not None and after is not None
                         and _worse(name, before, after, threshold))
            result.percentiles.append(Delta(f"{op['operation']} [{op['variant']}]", name,
                                            before, after, regressed))
    old_tests = {t["nodeid"]: t["outcome"] for t in baseline["tests"]}
    for test in report["tests"]:
        was = old_tests.get(test["nodeid"])
        if was is None or was == test["outcome"]:
            continue
        result.outcomes.append(Delta(test["nodeid"], "outcome", None, None,
                                     was not in _BAD and test["outcome"] in _BAD,
                                     f"{was} → {test['outcome']}"))
    return result


def _rows(deltas: list[Delta]) -> str:
    return "".join(
        f'<tr class="{"regression" if d.regressed else ""}"><td><code>{escape(d.subject)}'
        f"</code></td><td>{escape(d.field)}</td><td>{escape(d.show(d.before))}</td>"
        f"<td>{escape(d.show(d.after))}</td><td>{escape(d.change())}</td>"
        f"<td>{'regression' if d.regressed else ''}</td></tr>"
        for d in sorted(deltas, key=lambda d: not d.regressed))


def comparison_section(report: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> str:
    """The comparison as HTML, regressions first and highlighted (``""`` without one)."""
    if baseline is None:
        return ""
    comparison = compare_runs(report, baseline)
    head = ("<tr><th>what</th><th>field</th><th>before</th><th>after</th><th>change</th>"
            "<th></th></tr>")
    parts = [f'<section id="comparison"><h2>Compared with the run of '
             f"{escape(comparison.baseline_datetime)}</h2><p class=\""
             f'{"fail" if comparison.regressions else "pass"}">{comparison.regressions} '
             f"regression(s): a figure worse by more than {THRESHOLD:g}%, a budget no longer "
             "met, or a test that passed and now fails.</p>"]
    for title, deltas in (("Tests whose outcome changed", comparison.outcomes),
                          ("Budgets", comparison.budgets),
                          ("Percentiles", comparison.percentiles)):
        if deltas:
            parts.append(f'<h3>{title}</h3><table class="compact">{head}{_rows(deltas)}'
                         "</table>")
    if len(parts) == 1:
        parts.append("<p>The runs have no test, budget or operation in common.</p>")
    return "".join(parts) + "</section>"
