"""The rollback and latency checkers."""

from __future__ import annotations

import pytest

from pytest_resilience._events import History
from pytest_resilience.checks import check_latency, check_rollback


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
    assert check_latency(history, ["p95<20ms", "mean<50ms"]).ok
    verdict = check_latency(history, ["p95<20ms", "max<=100ms"])
    assert not verdict.ok
    assert verdict.explanation.startswith(
        "Budget max<=100ms not met over 20 sla.sample event(s): max=500ms breaks max<=100ms "
        "(20 samples). Slowest events: #19 sla.sample")


def test_other_event_kinds_can_be_judged() -> None:
    history = History()
    history.append("breaker.call", "b", time=0.0, attrs={"duration": 2.0})
    assert not check_latency(history, ["p50<1s"], kind="breaker.call", attr="duration").ok


def test_no_samples_is_a_violation() -> None:
    assert "No sla.sample events" in check_latency(History(), ["p95<1s"]).explanation


def test_error_rate_and_operation_scopes_use_the_sla_grammar() -> None:
    history = samples(0.01, 0.02)
    history.append("sla.sample", "op", time=3.0, attrs={"seconds": 0.01, "ok": False})
    history.append("sla.sample", "other", time=4.0, attrs={"seconds": 9.0, "ok": True})
    assert check_latency(history, ["op:max<50ms", "error_rate<50%"]).ok
    verdict = check_latency(history, ["error_rate<20%"])
    assert verdict.explanation.startswith("Budget error_rate<20% not met over 4 sla.sample "
                                          "event(s): error_rate=25% breaks error_rate<20%")


def test_one_budget_grammar() -> None:
    """Regression: check_latency had its own parser, which took 'p95<0.2' (no unit) and
    refused 'error_rate<1%'; the SLA grammar is the only one now."""
    with pytest.raises(ValueError) as info:
        check_latency(samples(0.1), ["p95<0.2"])
    assert str(info.value) == (
        "budget='p95<0.2': value '0.2' is not a latency. Write a number with a unit: ns, "
        "us, ms or s (e.g. 200ms).")
    assert check_latency(samples(0.1), ["error_rate<1%"]).ok
