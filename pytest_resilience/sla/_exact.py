"""A budget's figure computed exactly over a handful of samples (no histogram, no minimum
sample count): what one chaos plan, or one recovery interval, observed."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_resilience.sla._budgets import Budget

__all__ = ["Sample", "exact_figure"]

#: One timed call: (seconds it took, whether it succeeded, when it ended).
Sample = tuple[float, bool, float]


def exact_figure(budget: Budget, samples: Sequence[Sample]) -> float | None:
    """The figure ``budget`` is about over ``samples``: a nearest-rank percentile, max,
    min or mean of the successful calls' seconds, the error rate, or calls per second
    over the span; ``None`` when there is nothing to measure."""
    if not samples:
        return None
    if budget.metric == "error_rate":
        return sum(1 for _, ok, _ in samples if not ok) / len(samples)
    if budget.metric == "throughput":
        span = max(end for _, _, end in samples) - min(end - s for s, _, end in samples)
        return len(samples) / span if span > 0 else None
    latencies = sorted(s for s, ok, _ in samples if ok)
    if not latencies:
        return None
    if budget.quantile is not None:
        return latencies[max(0, math.ceil(budget.quantile * len(latencies)) - 1)]
    if budget.metric == "max":
        return latencies[-1]
    if budget.metric == "min":
        return latencies[0]
    return sum(latencies) / len(latencies)
