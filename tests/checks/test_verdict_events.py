"""Every check_* writes its verdict into the active history as a check.verdict event."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_resilience import History, VirtualClock, recording
from pytest_resilience.checks import (
    Verdict,
    check_amplification,
    check_breaker,
    check_eviction,
    check_latency,
    check_retry,
    check_rollback,
    check_ttl,
)

CHECKS: dict[str, Callable[[History], Verdict]] = {
    "retry": check_retry,
    "breaker": check_breaker,
    "eviction": check_eviction,
    "latency": lambda h: check_latency(h, ["p50<1s"]),
    "rollback": lambda h: check_rollback({}, {"a": 1}),
    "ttl": lambda h: check_ttl(h, ttl=1.0),
    "amplification": check_amplification,
}


@pytest.mark.parametrize("checker", sorted(CHECKS))
def test_a_verdict_is_recorded(checker: str) -> None:
    clock = VirtualClock(start=7.0)
    with recording(History(clock=clock)) as history:
        verdict = CHECKS[checker](History())
    assert [(e.kind, e.source, e.time, dict(e.attrs)) for e in history] == [
        ("check.verdict", checker, 7.0, {"checker": checker, "passed": verdict.ok,
                                         "explanation": verdict.explanation})]


def test_without_a_clock_the_verdict_is_stamped_at_the_last_event() -> None:
    with recording(History()) as history:
        history.append("cache.load", "c", time=42.0, attrs={"key": "a", "bytes": 1})
        check_eviction(history)
    assert history[-1].kind == "check.verdict"
    assert history[-1].time == 42.0


def test_without_an_active_history_nothing_is_recorded() -> None:
    judged = History()
    assert check_retry(judged).ok
    assert len(judged) == 0
