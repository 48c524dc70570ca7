"""Property-based fault runs: a body runs once per generated fault plan on a virtual
clock; a failure shrinks to the smallest plan, printed as JSON with its replay line."""

from __future__ import annotations

from pytest_resilience.chaos._clock import ChaosClock
from pytest_resilience.chaos._runner import (
    ChaosFailure,
    ChaosResult,
    ChaosRun,
    ChaosVacuous,
    Check,
    replay,
    run_chaos,
)

__all__ = [
    "ChaosClock",
    "ChaosFailure",
    "ChaosResult",
    "ChaosRun",
    "ChaosVacuous",
    "Check",
    "replay",
    "run_chaos",
]
