"""check_breaker's boundary (a trial is owed at exactly recovery_timeout) and breakers
watched from outside, whose state machine is inferred from admitted and refused calls."""

from __future__ import annotations

import pytest

from pytest_resilience import History
from pytest_resilience.checks import check_breaker


def scripted(*rows: tuple[str, float, str | None]) -> History:
    """``("ok"|"error", t, None)`` admitted calls, ``("reject", t, None)`` refusals."""
    history = History()
    for what, t, _ in rows:
        if what == "reject":
            history.append("breaker.rejected", "b", time=t, attrs={"error": "Open"})
        else:
            history.append("breaker.call", "b", time=t,
                           attrs={"outcome": what, "duration": 0.0, "started": t,
                                  "error": None if what == "ok" else "ConnectionError"})
    return history


def opened_then(*rows: tuple[str, float, str | None]) -> History:
    return scripted(("error", 0, None), ("error", 1, None), ("error", 2, None), *rows)


def test_a_rejection_at_exactly_the_timeout_is_a_missing_trial() -> None:
    """Regression (issue 16): a rejection at exactly recovery_timeout used to pass."""
    history = opened_then(("reject", 5, None), ("reject", 12, None))
    verdict = check_breaker(history, recovery_timeout=10.0)
    assert not verdict.ok
    assert verdict.explanation.startswith(
        "Breaker 'b' rejected a call 10s after opening, at or past the 10s recovery timeout: "
        "it never let a trial call through (half-open). Events: #2 breaker.call[b]@2s")


def test_a_trial_at_the_timeout_passes_and_its_failure_reopens() -> None:
    history = opened_then(("reject", 5, None), ("error", 12, None), ("reject", 13, None),
                          ("ok", 22, None), ("ok", 23, None))
    verdict = check_breaker(history, recovery_timeout=10.0)
    assert verdict.ok, verdict.explanation


def test_half_opening_early_is_caught() -> None:
    verdict = check_breaker(opened_then(("reject", 5, None), ("ok", 9, None)),
                            recovery_timeout=10.0)
    assert "let a call through 7s after opening, before the 10s recovery timeout" in (
        verdict.explanation)


def test_a_threshold_makes_the_opening_certain() -> None:
    history = scripted(("error", 0, None), ("error", 1, None), ("ok", 3, None))
    verdict = check_breaker(history, recovery_timeout=10.0, failure_threshold=2)
    assert "let a call through 2s after opening" in verdict.explanation
    early = check_breaker(scripted(("error", 0, None), ("reject", 1, None)),
                          failure_threshold=3)
    assert "rejected a call while CLOSED, after 1 consecutive failure(s) of the 3 that " \
        "open it" in early.explanation


def test_a_refusal_with_no_failure_is_caught() -> None:
    verdict = check_breaker(scripted(("ok", 0, None), ("reject", 1, None)))
    assert "rejected a call while CLOSED: no admitted call had failed" in verdict.explanation


def test_a_threshold_is_validated() -> None:
    with pytest.raises(ValueError) as info:
        check_breaker(History(), failure_threshold=0)
    assert str(info.value) == ("failure_threshold=0 is not a count. Pass an int >= 1, or "
                               "leave it out to infer openings from refusals.")


def test_transition_histories_keep_the_boundary_too() -> None:
    history = History()
    history.append("breaker.transition", "c", time=0.0, attrs={"from": "closed", "to": "open"})
    history.append("breaker.rejected", "c", time=10.0, attrs={"retry_after": 0.0})
    assert "rejected a call 10s after opening, at or past the 10s recovery timeout" in (
        check_breaker(history, recovery_timeout=10.0).explanation)
