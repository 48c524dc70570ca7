"""The error hierarchy: context, recoverable flag, and the data each error carries."""

from __future__ import annotations

import pytest

from pytest_resilience._errors import (
    Attempt,
    BudgetExceeded,
    CircuitOpenError,
    FaultInjected,
    LockTimeout,
    RateLimitExceeded,
    ResilienceError,
    RetryError,
    ValidationError,
)


def test_base_carries_context_and_recoverable_flag() -> None:
    err = ResilienceError("boom", context={"service": "db"})
    assert str(err) == "boom"
    assert err.context == {"service": "db"}
    assert err.recoverable is False
    assert ResilienceError("x", recoverable=True).recoverable is True


@pytest.mark.parametrize(
    ("err", "recoverable"),
    [
        (CircuitOpenError("open", name="db", retry_after=3.0), True),
        (RateLimitExceeded("slow down", name="api", retry_after=0.5), True),
        (LockTimeout("waited", resource="pool", timeout=1.0), True),
        (FaultInjected("f", failpoint="db.write"), True),
        (BudgetExceeded("p95", budget="p95<200ms", observed=0.3), False),
    ],
)
def test_default_recoverability(err: ResilienceError, recoverable: bool) -> None:
    assert isinstance(err, ResilienceError)
    assert err.recoverable is recoverable


def test_retry_error_keeps_every_attempt() -> None:
    first, last = ConnectionError("a"), TimeoutError("b")
    err = RetryError(
        "gave up", attempts=[Attempt(1, 0.0, 0.5, first), Attempt(2, 1.5, 2.0, last)]
    )
    assert len(err.attempts) == 2
    assert err.last_exception is last
    assert err.attempts[0].duration == 0.5
    assert RetryError("none", attempts=[]).last_exception is None


def test_validation_error_lists_every_problem_and_is_a_value_error() -> None:
    err = ValidationError(["id '' is empty", "embedding has NaN at 3"])
    assert isinstance(err, ValueError)
    assert str(err) == "2 validation problems:\n  - id '' is empty\n  - embedding has NaN at 3"
    assert err.problems == ("id '' is empty", "embedding has NaN at 3")
