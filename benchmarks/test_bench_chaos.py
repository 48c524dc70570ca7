"""Chaos runner throughput: fault plans per second on the example retry scenario.

Each benchmark round runs 200 plans; plans per second = 200 / round time (target >= 200).
Side by side: our runner (plans, swarm activation, Hypothesis-drawn decisions, the retry
checker over each history; with equal jitter, and with full jitter where the checker also
runs its too-short-delays test) and the same scenario by hand with plain Hypothesis + tenacity
(a list of booleans as the fault schedule, no history, no checker).

Run: ``pytest benchmarks/test_bench_chaos.py --benchmark-only``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

import faults
from faults import Action
from faults.families import failpoints
from pytest_resilience._backoff import Backoff
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import RetryError
from pytest_resilience._retry import Retry
from pytest_resilience.chaos import ChaosRun, run_chaos
from pytest_resilience.checks import check_retry

PLANS = 200
BACKOFF = Backoff.exponential(base=0.1, factor=2.0, max=2.0)
DB = failpoints({"db.read": [Action.raise_(ConnectionError("reset"))]})


def ours(jitter: str) -> int:
    def retry_scenario(run: ChaosRun) -> None:
        policy = Retry(attempts=4, backoff=BACKOFF, jitter=jitter, seed=7, clock=run.clock,
                       name="db")
        with contextlib.suppress(RetryError):
            policy.call(faults.failpoint, "db.read", "row")

    result = run_chaos(retry_scenario, families=[DB], max_examples=PLANS, seed=1,
                       checks=[lambda h: check_retry(h, attempts=4, backoff=BACKOFF,
                                                     jitter=jitter)])
    return result.plans


@pytest.mark.benchmark(group="chaos-plans")
@pytest.mark.parametrize("jitter", ["equal", "full"])
def test_ours_chaos_runner_retry_scenario(benchmark: Any, jitter: str) -> None:
    plans = benchmark.pedantic(ours, args=(jitter,), rounds=3, iterations=1)
    assert plans >= PLANS
    benchmark.extra_info["plans_per_second"] = plans / benchmark.stats.stats.mean


@pytest.mark.benchmark(group="chaos-plans")
def test_peer_hypothesis_and_tenacity_by_hand(benchmark: Any) -> None:
    tenacity = pytest.importorskip("tenacity", reason="peer: tenacity")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    runs = [0]

    @settings(max_examples=PLANS, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.booleans(), max_size=10))
    def by_hand(schedule: list[bool]) -> None:
        runs[0] += 1
        clock = VirtualClock()
        calls = iter(schedule)

        @tenacity.retry(stop=tenacity.stop_after_attempt(4), sleep=clock.sleep,
                        wait=tenacity.wait_exponential(multiplier=0.1, max=2.0), reraise=True)
        def read() -> str:
            if next(calls, False):
                raise ConnectionError("reset")
            return "row"

        with contextlib.suppress(ConnectionError):
            read()

    def run() -> int:
        runs[0] = 0
        by_hand()
        return runs[0]

    assert benchmark.pedantic(run, rounds=3, iterations=1) >= PLANS // 2
