"""Compare a run's percentiles against a stored baseline and flag regressions.

A rule ``p99:+10%`` fails when an operation's p99 grew by more than 10% *and* by more
than the absolute noise floor. Pass several runs on either side (repeat the run) and the
median of each field is compared, so one noisy run cannot fail or pass the check alone.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_resilience import _validate
from pytest_resilience.sla._budgets import format_seconds

__all__ = ["Regression", "Rule", "common_operations", "compare_reports"]

_FIELDS = ("p50", "p90", "p95", "p99", "p99.9", "mean", "max", "min", "error_rate")
_RULE = re.compile(r"^(?P<field>[a-z0-9._]+):\+?(?P<pct>[0-9]+(?:\.[0-9]+)?)%$")


@dataclass(frozen=True)
class Rule:
    """``field:+N%``: fail when ``field`` grows by more than ``N`` percent."""

    field: str
    percent: float

    @classmethod
    def parse(cls, text: str) -> Rule:
        """Parse ``p99:+10%``; the error names the accepted fields."""
        match = _RULE.match(text.strip()) if isinstance(text, str) else None
        if match is None or match.group("field") not in _FIELDS:
            raise ValueError(
                f"rule={_validate.show(text)} is not a comparison rule. Write FIELD:+N% with "
                "FIELD one of "
                f"{', '.join(_FIELDS)} (e.g. p99:+10%)."
            )
        return cls(match.group("field"), float(match.group("pct")))


@dataclass(frozen=True)
class Regression:
    """One field of one operation that got worse beyond its rule and the noise floor."""

    operation: str
    variant: str
    rule: Rule
    baseline: float
    current: float

    def describe(self) -> str:
        """One line for people."""
        change = (self.current / self.baseline - 1) * 100 if self.baseline else math.inf
        fmt = _fmt(self.rule.field)
        return (
            f"{self.operation} [{self.variant}] {self.rule.field}: {fmt(self.baseline)} -> "
            f"{fmt(self.current)} ({change:+.1f}% > +{self.rule.percent:g}%)"
        )


def _fmt(field: str) -> Any:
    return (lambda v: f"{v * 100:.3g}%") if field == "error_rate" else format_seconds


def _field(op: dict[str, Any], field: str) -> float | None:
    value = op["percentiles"].get(field) if field.startswith("p") else op.get(field)
    return None if value is None else float(value)


def _medians(runs: Sequence[dict[str, Any]], field: str) -> dict[tuple[str, str], float]:
    values: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for op in run["operations"]:
            value = _field(op, field)
            if value is not None:
                values.setdefault((op["operation"], op["variant"]), []).append(value)
    return {key: statistics.median(v) for key, v in values.items()}


def compare_reports(
    baselines: Sequence[dict[str, Any]],
    currents: Sequence[dict[str, Any]],
    rules: Sequence[Rule],
    *,
    noise_floor: float = 0.0,
) -> tuple[list[Regression], list[str]]:
    """Regressions, and notes on operations that could not be compared."""
    if not baselines or not currents:
        raise ValueError("compare needs at least one baseline and one current report.")
    regressions: list[Regression] = []
    notes: list[str] = []
    for rule in rules:
        base = _medians(baselines, rule.field)
        now = _medians(currents, rule.field)
        for key in sorted(base.keys() - now.keys()):
            notes.append(f"{key[0]} [{key[1]}] {rule.field}: missing from the current run")
        for key in sorted(base.keys() & now.keys()):
            before, after = base[key], now[key]
            floor = noise_floor if rule.field != "error_rate" else 0.0
            grew = after - before
            if grew > floor and (before == 0 or grew / before * 100 > rule.percent):
                regressions.append(Regression(key[0], key[1], rule, before, after))
    return regressions, notes


def common_operations(
    baselines: Sequence[dict[str, Any]], currents: Sequence[dict[str, Any]]
) -> set[tuple[str, str]]:
    """``(operation, variant)`` pairs measured on both sides (nothing in common: nothing
    can be compared)."""

    def keys(runs: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(op["operation"], op["variant"]) for run in runs for op in run["operations"]}

    return keys(baselines) & keys(currents)
