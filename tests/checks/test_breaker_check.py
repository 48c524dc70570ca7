"""The breaker checker on scripted histories."""

from __future__ import annotations

from pytest_resilience._events import History
from pytest_resilience.checks import check_breaker


def build(*rows: tuple[float, str, dict[str, object]]) -> History:
    history = History()
    for t, kind, attrs in rows:
        history.append(kind, "b", time=t, attrs=attrs)
    return history


def tr(t: float, old: str, new: str) -> tuple[float, str, dict[str, object]]:
    return (t, "breaker.transition", {"from": old, "to": new})


def call(t: float, state: str, outcome: str = "ok") -> tuple[float, str, dict[str, object]]:
    return (t, "breaker.call", {"state": state, "outcome": outcome, "duration": 0.0})


def rejected(t: float) -> tuple[float, str, dict[str, object]]:
    return (t, "breaker.rejected", {"retry_after": 1.0})


def test_a_full_cycle_passes() -> None:
    history = build(call(0, "closed", "error"), tr(0, "closed", "open"), rejected(1),
                    tr(10, "open", "half_open"), call(10, "half_open"),
                    tr(10, "half_open", "closed"), call(11, "closed"))
    verdict = check_breaker(history, recovery_timeout=10.0)
    assert verdict.ok, verdict.explanation
    assert "7 breaker event(s) from ['b'] follow the state machine" in verdict.explanation


def test_a_call_while_open_is_named() -> None:
    verdict = check_breaker(build(tr(0, "closed", "open"), call(1, "closed")))
    assert not verdict.ok
    assert verdict.explanation.startswith("Breaker 'b' let a call through while OPEN. Events: "
                                          "#0 breaker.transition[b]")
    assert [e.seq for e in verdict.events] == [0, 1]


def test_a_forbidden_transition_is_named() -> None:
    verdict = check_breaker(build(tr(0, "closed", "half_open")))
    assert "made the transition 'closed' -> 'half_open', which the state machine does not " \
        "allow" in verdict.explanation


def test_a_transition_from_the_wrong_state_is_named() -> None:
    verdict = check_breaker(build(tr(0, "open", "half_open")))
    assert "moved from 'open' while the history had it 'closed'" in verdict.explanation


def test_half_opening_early_is_caught() -> None:
    verdict = check_breaker(build(tr(0, "closed", "open"), tr(3, "open", "half_open")),
                            recovery_timeout=10.0)
    assert "half-opened 3s after opening, before the 10s recovery timeout" in (
        verdict.explanation)


def test_never_half_opening_is_caught() -> None:
    history = build(tr(0, "closed", "open"), rejected(5), rejected(12))
    verdict = check_breaker(history, recovery_timeout=10.0)
    assert not verdict.ok
    assert "rejected a call 12s after opening, at or past the 10s recovery timeout: it " \
        "never half-opened" in verdict.explanation
    assert check_breaker(history).ok  # without the timeout only the shape is judged


def test_rejecting_while_closed_is_caught() -> None:
    assert "rejected a call while CLOSED" in check_breaker(build(rejected(0))).explanation


def test_state_values_from_enums_and_pybreaker_names_are_understood() -> None:
    class State:
        value = "HALF-OPEN"

    history = build(tr(0, "closed", "open"), (1, "breaker.transition",
                                               {"from": "open", "to": State()}))
    assert check_breaker(history).ok
