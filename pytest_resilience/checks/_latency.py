"""The latency checker: percentile budgets (``"p95<200ms"``) over durations in a history."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_resilience import _validate
from pytest_resilience._events import Event
from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed

__all__ = ["LatencyBudget", "check_latency"]

NAME = "latency"
_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_BUDGET = re.compile(r"^\s*(p\d+(?:\.\d+)?|max|mean)\s*(<=|<)\s*([0-9.]+(?:e-?\d+)?)\s*"
                     r"(s|ms|us|µs)?\s*$")
_SHOWN = 3


@dataclass(frozen=True, slots=True)
class LatencyBudget:
    """``stat`` (``p95``, ``max``, ``mean``) must be below (or at, ``inclusive``) ``seconds``."""

    stat: str
    seconds: float
    inclusive: bool = False

    @classmethod
    def parse(cls, text: str) -> LatencyBudget:
        """Parse ``"p95<200ms"``, ``"max<=1s"``, ``"mean<0.05"`` (seconds if no unit)."""
        match = _BUDGET.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                f"budget={_validate.show(text)} is not a latency budget. Write e.g. 'p95<200ms', "
                "'max<=1s' or 'mean<0.05' (units s, ms, us; seconds if none)."
            )
        stat, op, number, unit = match.groups()
        if stat.startswith("p") and not 0 < float(stat[1:]) <= 100:
            raise ValueError(f"budget={text!r}: percentile must be in (0, 100].")
        return cls(stat, float(number) * _UNITS[unit or "s"], op == "<=")

    def measure(self, values: Sequence[float]) -> float:
        """The statistic over ``values`` (nearest-rank percentile)."""
        ordered = sorted(values)
        if self.stat == "max":
            return ordered[-1]
        if self.stat == "mean":
            return sum(ordered) / len(ordered)
        rank = max(1, math.ceil(float(self.stat[1:]) / 100 * len(ordered)))
        return ordered[rank - 1]

    def holds(self, value: float) -> bool:
        """Whether ``value`` keeps the budget."""
        return value <= self.seconds if self.inclusive else value < self.seconds

    def __str__(self) -> str:
        return f"{self.stat}{'<=' if self.inclusive else '<'}{self.seconds:.6g}s"


def check_latency(
    history: HistoryLike,
    budgets: Sequence[str | LatencyBudget],
    *,
    kind: str = "sla.sample",
    attr: str = "seconds",
    source: str | None = None,
) -> Verdict:
    """Check ``budgets`` over the ``attr`` durations of ``kind`` events (of ``source``).

    Defaults read ``sla.sample`` events; ``kind="breaker.call", attr="duration"`` judges a
    breaker's calls. A failing verdict names the slowest events.
    """
    parsed = [b if isinstance(b, LatencyBudget) else LatencyBudget.parse(b) for b in budgets]
    samples: list[tuple[float, Event]] = [
        (float(e.attrs[attr]), e) for e in select(history, kind, source)
        if e.kind == kind and e.attrs.get(attr) is not None
    ]
    if not samples:
        return failed(NAME, f"No {kind} events with {attr!r} to judge the budgets "
                      f"{', '.join(map(str, parsed))} against.", [])
    values = [v for v, _ in samples]
    for budget in parsed:
        value = budget.measure(values)
        if not budget.holds(value):
            slowest = [e for _, e in sorted(samples, key=lambda s: -s[0])[:_SHOWN]]
            return failed(
                NAME,
                f"Budget {budget} broken: {budget.stat} of {len(values)} {kind} samples is "
                f"{value:.6g}s. Slowest events: " + "; ".join(describe(e) for e in slowest)
                + ".",
                slowest,
            )
    return passed(NAME, f"{len(values)} {kind} samples keep "
                  + ", ".join(str(b) for b in parsed) + ".")
