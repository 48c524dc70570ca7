"""The latency checker: SLA budgets (``"p95<200ms"``, ``"error_rate<1%"``) over the
durations recorded in a history.

Budgets use the one grammar of ``pytest_resilience.sla.Budget``; figures are exact (every
event counts: nearest-rank percentiles, no histogram), so any number of samples will do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_resilience._events import Event
from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed, recorded
from pytest_resilience.kinds import SLA_SAMPLE
from pytest_resilience.sla import Budget

__all__ = ["check_latency"]

NAME = "latency"
_SHOWN = 3


def _measure(budget: Budget, samples: list[tuple[float, bool, Event]]) -> float | None:
    """The figure ``budget`` is about, over every sample (exact)."""
    if budget.metric == "error_rate":
        return sum(1 for _, ok, _ in samples if not ok) / len(samples)
    if budget.metric == "throughput":
        span = samples[-1][2].time - (samples[0][2].time - samples[0][0])
        return len(samples) / span if span > 0 else None
    values = sorted(v for v, ok, _ in samples if ok)
    if not values:
        return None
    if budget.metric == "max":
        return values[-1]
    if budget.metric == "min":
        return values[0]
    if budget.metric == "mean":
        return sum(values) / len(values)
    assert budget.quantile is not None
    return values[max(1, math.ceil(budget.quantile * len(values) - 1e-9)) - 1]


def _ok(event: Event) -> bool:
    if "ok" in event.attrs:
        return bool(event.attrs["ok"])
    return bool(event.attrs.get("outcome", "ok") == "ok")


@recorded
def check_latency(
    history: HistoryLike,
    budgets: Sequence[str | Budget],
    *,
    kind: str = SLA_SAMPLE,
    attr: str = "seconds",
    source: str | None = None,
) -> Verdict:
    """Check ``budgets`` over the ``attr`` durations of ``kind`` events (of ``source``).

    Defaults read ``sla.sample`` events; ``kind="breaker.call", attr="duration"`` judges a
    breaker's calls, ``kind="call.end", attr="duration"`` watched calls. A budget that
    names an operation (``"search:p95<20ms"``) reads that source only. An event is a
    failure when its ``ok`` is false or its ``outcome`` is not ``ok``; latency figures
    count successful events. A failing verdict names the slowest events.
    """
    parsed = [b if isinstance(b, Budget) else Budget.parse(b) for b in budgets]
    unknown = [b.text for b in parsed if b.metric == "amplification"]
    if unknown:
        raise ValueError(f"budgets {unknown} are not latency budgets. Judge amplification "
                         "with check_amplification.")
    events = [e for e in select(history, kind, source)
              if e.kind == kind and e.attrs.get(attr) is not None]
    if not events:
        return failed(NAME, f"No {kind} events with {attr!r} to judge the budgets "
                      f"{', '.join(b.text for b in parsed)} against.", [])
    for budget in parsed:
        scoped = [(float(e.attrs[attr]), _ok(e), e) for e in events
                  if budget.operation in (None, e.source)]
        if not scoped:
            return failed(NAME, f"No {kind} events of {budget.operation!r} to judge "
                          f"{budget.text} against.", [])
        verdict = budget.check(_measure(budget, scoped), samples=len(scoped), exact=True)
        if verdict.passed is not True:
            slowest = [e for _, _, e in sorted(scoped, key=lambda s: -s[0])[:_SHOWN]]
            return failed(
                NAME,
                f"Budget {budget.text} not met over {len(scoped)} {kind} event(s): "
                f"{verdict.reason}. Slowest events: "
                + "; ".join(describe(e) for e in slowest) + ".",
                slowest,
            )
    return passed(NAME, f"{len(events)} {kind} event(s) keep "
                  + ", ".join(b.text for b in parsed) + ".")
