"""SLA engine: latency histograms, budgets and the recorder behind the ``sla`` fixture."""

from __future__ import annotations

from pytest_resilience.sla._budgets import Budget, BudgetVerdict
from pytest_resilience.sla._histogram import ALPHA, LatencyHistogram, min_samples
from pytest_resilience.sla._recorder import Measurement, OperationStats, SLARecorder

__all__ = [
    "ALPHA",
    "Budget",
    "BudgetVerdict",
    "LatencyHistogram",
    "Measurement",
    "OperationStats",
    "SLARecorder",
    "min_samples",
]
