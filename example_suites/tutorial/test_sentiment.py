"""The README's five-minute tutorial: a fault proxy, an SLA budget, the event history and
one chaos run, against the small sentiment service in ``sentiment.py``."""

from __future__ import annotations

import pytest
from sentiment import ModelServer, Predictor, score

from faults import Action, Trigger
from faults.network import latency
from pytest_resilience import Backoff, RetryError
from pytest_resilience.checks import check_retry


@pytest.fixture(scope="module")
def model_server():
    with ModelServer() as server:
        yield server


# 1. A real TCP proxy between the client and the model: slow replies are retried.
def test_slow_replies_are_retried_then_given_up(model_server, fault_proxy, history):
    proxy = fault_proxy(model_server.address)
    predictor = Predictor(f"http://{proxy.host}:{proxy.port}", timeout=0.2)
    # Every reply 0.4 s late, past the client's 0.2 s timeout: three attempts, then it gives up.
    with proxy.add_toxic(latency(400)), pytest.raises(RetryError):
        predictor.predict("great service")
    assert predictor.predict("great service") == 1.0  # toxic removed: answered at once
    outcomes = [e.attrs["outcome"] for e in history.snapshot() if e.kind == "retry.attempt"]
    assert outcomes == ["error", "error", "error", "ok"]


# 2. An SLA budget, measured on virtual time while the model is slow for a third of the run.
@pytest.mark.sla("sentiment: p95<20ms", "sentiment: error_rate<1%", clock="virtual")
def test_latency_budget_holds_while_the_model_is_slow(sla, clock, faults):
    for i in range(300):
        if i == 100:  # calls 100-199: half of them 15 ms slower
            slow = faults.inject("model.predict", Action.delay(0.015), trigger=Trigger.rate(0.5))
        if i == 200:
            slow.stop()
        with sla.measure("sentiment"):
            clock.advance(0.002)                  # the model's own 2 ms
            assert 0.0 <= score("fast and great") <= 1.0


# 3. A chaos run: generated fault plans against the client's retries, judged by a checker.
BACKOFF = Backoff.exponential(base=0.05)


@pytest.mark.chaos(
    failpoints={"model.call": [Action.raise_(ConnectionError("reset"))]},
    checks=[lambda h: check_retry(h, attempts=3, backoff=BACKOFF, jitter="none")],
    allow=[RetryError], must_fire=["model.call"], max_examples=30,
)
def test_retries_hold_under_generated_faults(chaos, model_server):
    host, port = model_server.address
    predictor = Predictor(f"http://{host}:{port}", clock=chaos.clock)
    assert predictor.predict("love it") == 1.0
