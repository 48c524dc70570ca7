"""Property-based fault runs: a body runs once per generated fault plan on a virtual
clock; a failure shrinks to the smallest plan, printed as JSON with its replay line.
``replay`` repeats one saved plan without Hypothesis."""

from __future__ import annotations

from pytest_resilience.chaos._runner import (
    BudgetBroken,
    ChaosFailure,
    ChaosResult,
    ChaosRun,
    ChaosVacuous,
    Check,
    PropertyFailed,
    replay,
    run_chaos,
)

__all__ = [
    "BudgetBroken",
    "ChaosFailure",
    "ChaosResult",
    "ChaosRun",
    "ChaosVacuous",
    "Check",
    "PropertyFailed",
    "replay",
    "run_chaos",
]
