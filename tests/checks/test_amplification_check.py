"""The retry-storm oracle: two nested layers retrying 3 times each turn one request into 9
upstream calls (caught); the same stack sharing a RetryBudget stays near 1x (passes)."""

from __future__ import annotations

import contextlib

import pytest

from pytest_resilience import History, Retry, RetryBudget, VirtualClock, recording
from pytest_resilience.checks import check_amplification
from pytest_resilience.observe import watch_calls
from pytest_resilience.sla import Budget, SLARecorder

REQUESTS = 20


class Stack:
    """client -> service -> upstream; each of the two upper layers retries 3 times."""

    def __init__(self, clock: VirtualClock, budget: RetryBudget | None) -> None:
        def layer(name: str) -> Retry:
            return Retry(attempts=3, jitter="none", clock=clock, budget=budget, name=name)

        self.client_retry = layer("client")
        self.service_retry = layer("service")

    def upstream(self) -> str:
        raise ConnectionError("upstream down")

    def service(self) -> str:
        return self.service_retry.call(self.upstream)

    def client(self) -> str:
        return self.client_retry.call(self.service)


def run(budget: RetryBudget | None) -> History:
    clock = VirtualClock()
    stack = Stack(clock, budget)
    with recording(History(clock=clock)) as history, \
            watch_calls(stack, "client", name="client"), \
            watch_calls(stack, "service", name="service"), \
            watch_calls(stack, "upstream", name="upstream"):
        for _ in range(REQUESTS):
            with contextlib.suppress(Exception):
                stack.client()
    return history


def test_nested_retries_amplify_nine_times() -> None:
    verdict = check_amplification(run(budget=None), max_ratio=1.2)
    assert not verdict.ok
    assert verdict.explanation.startswith(
        "Layer 'upstream' made 180 calls for 20 user request(s): 9x amplification, above the "
        "budget of 1.2x + 3 = 27 calls (retry budgets let retries add about 20% of calls, "
        "with a small minimum). Calls per layer: client 20, service 60, upstream 180. The "
        "most amplified request (#0 call.start[client]")
    assert verdict.explanation.endswith("made: client 1, service 3, upstream 9.")


def test_a_shared_retry_budget_keeps_the_storm_down() -> None:
    # Shared by both layers, the budget counts two first attempts per user request:
    # 10% of its calls is 20% of the requests.
    budget = RetryBudget(ratio=0.1, min_retries=1, clock=VirtualClock())
    verdict = check_amplification(run(budget), max_ratio=1.2)
    assert verdict.ok, verdict.explanation
    assert verdict.explanation == ("20 user request(s); calls per layer: client 20, service "
                                   "21, upstream 25; every layer within 1.2x + 3 calls.")


def test_the_sla_grammar_has_an_amplification_budget() -> None:
    budget = Budget.parse("amplification<1.2x")
    assert (budget.metric, budget.threshold) == ("amplification", 1.2)
    stormy = SLARecorder("amplification<1.2", "upstream: amplification<10", history=run(None))
    assert [(v.passed, v.reason) for v in stormy.check()] == [
        (False, "amplification=9x breaks amplification<1.2 (20 samples)"),
        (True, "amplification=9x within upstream: amplification<10 (20 samples)")]
    assert SLARecorder("amplification<1.2", history=History()).check()[0].passed is None
    with pytest.raises(ValueError) as info:
        Budget.parse("amplification<0.5")
    assert str(info.value) == ("budget='amplification<0.5': value '0.5' is not an "
                               "amplification. Write calls per user request, 1 or more: 1.2 "
                               "or 1.2x.")


def test_requests_by_correlation_id_and_retry_names() -> None:
    history = History()
    for i, cid in enumerate(["r1", "r1", "r2"]):
        history.append("call.start", "client", time=float(i),
                       attrs={"function": "get", "args": "", "call": i + 1, "parent": None,
                              "correlation_id": cid})
    by_id = check_amplification(history, max_ratio=1.2, minimum=0)
    assert by_id.explanation.startswith("Layer 'client' made 3 calls for 2 user request(s)")
    retries = History()
    for attempt in (1, 2, 3, 1):
        retries.append("retry.attempt", "api", time=0.0,
                       attrs={"attempt": attempt, "outcome": "error", "error": "E",
                              "elapsed": 0.0})
    assert check_amplification(retries, max_ratio=2.0, minimum=0).ok
    assert not check_amplification(retries, max_ratio=1.5, minimum=0).ok


def test_nothing_to_count_is_a_failure_and_bad_budgets_are_refused() -> None:
    assert "No watched calls (call.start) or retry attempts" in (
        check_amplification(History()).explanation)
    with pytest.raises(ValueError) as info:
        check_amplification(History(), max_ratio=0.5)
    assert str(info.value) == ("max_ratio=0.5 is not an amplification budget. Pass a number "
                               ">= 1, e.g. 1.2 (20% more calls than requests).")
