"""The rollback and latency checkers."""

from __future__ import annotations

import pytest

from pytest_resilience._events import History
from pytest_resilience.checks import LatencyBudget, check_latency, check_rollback


def rolled_back() -> History:
    history = History()
    history.append("chroma.rollback", "docs", time=1.0, attrs={"ops": 2, "ids": 3})
    return history


def test_an_identical_store_passes_and_names_the_rollback() -> None:
    before = {"a": (1,), "b": (2,)}
    verdict = check_rollback(before, dict(before), history=rolled_back())
    assert verdict.ok
    assert "equals the 2 record(s) before it; rollback events: #0 chroma.rollback[docs]" in (
        verdict.explanation)


def test_differences_are_listed() -> None:
    verdict = check_rollback({"a": 1, "b": 2, "c": 3}, {"a": 9, "b": 2, "d": 4},
                             history=rolled_back())
    assert not verdict.ok
    assert verdict.explanation.startswith(
        "After the failed transaction the store differs from before it: 1 record(s) gone "
        "('c'), 1 record(s) left behind ('d'), 1 record(s) changed ('a')")
    assert [e.kind for e in verdict.events] == ["chroma.rollback"]


def test_no_rollback_event_is_a_violation() -> None:
    verdict = check_rollback({}, {}, history=History())
    assert "holds no chroma.rollback event" in verdict.explanation
    assert check_rollback({}, {}).ok


def samples(*seconds: float) -> History:
    history = History()
    for i, s in enumerate(seconds):
        history.append("sla.sample", "op", time=float(i), attrs={"seconds": s, "ok": True})
    return history


def test_budgets_hold_and_break() -> None:
    history = samples(*([0.01] * 19 + [0.5]))
    assert check_latency(history, ["p95<20ms", "mean<0.05"]).ok
    verdict = check_latency(history, ["p95<20ms", "max<=100ms"])
    assert not verdict.ok
    assert verdict.explanation.startswith("Budget max<=0.1s broken: max of 20 sla.sample "
                                          "samples is 0.5s. Slowest events: #19 sla.sample")


def test_other_event_kinds_can_be_judged() -> None:
    history = History()
    history.append("breaker.call", "b", time=0.0, attrs={"duration": 2.0})
    assert not check_latency(history, ["p50<1s"], kind="breaker.call", attr="duration").ok


def test_no_samples_is_a_violation() -> None:
    assert "No sla.sample events" in check_latency(History(), ["p95<1s"]).explanation


@pytest.mark.parametrize(("text", "stat", "seconds", "inclusive"), [
    ("p95<200ms", "p95", 0.2, False), ("max<=1s", "max", 1.0, True),
    ("mean < 0.05", "mean", 0.05, False), ("p99.9<50us", "p99.9", 50e-6, False),
])
def test_budget_parsing(text: str, stat: str, seconds: float, inclusive: bool) -> None:
    budget = LatencyBudget.parse(text)
    assert (budget.stat, budget.inclusive) == (stat, inclusive)
    assert budget.seconds == pytest.approx(seconds)


def test_a_bad_budget_names_the_format() -> None:
    with pytest.raises(ValueError) as info:
        LatencyBudget.parse("p95 under 2s")
    assert str(info.value) == ("budget='p95 under 2s' is not a latency budget. Write e.g. "
                               "'p95<200ms', 'max<=1s' or 'mean<0.05' (units s, ms, us; "
                               "seconds if none).")
