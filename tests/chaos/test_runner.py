"""The chaos runner: plans per body, shrinking, exact replay, vacuity, virtual time."""

from __future__ import annotations

import pytest

import faults
from faults import Action, FaultPlan
from faults.families import failpoints
from pytest_resilience._events import History
from pytest_resilience.chaos import ChaosFailure, ChaosRun, ChaosVacuous, replay, run_chaos
from pytest_resilience.chaos._decisions import NEVER, ReplayRandom
from pytest_resilience.checks import Verdict

DB = failpoints({"db.read": [Action.raise_(ConnectionError)]})


def read_with_retries(run: ChaosRun, tries: int = 4) -> int:
    """Read through failpoint db.read, trying up to ``tries`` times, 1 s apart."""
    failures = 0
    for _ in range(tries):
        try:
            faults.failpoint("db.read")
            return failures
        except ConnectionError:
            failures += 1
            run.clock.sleep(1.0)
    raise ConnectionError(f"gave up after {failures} failures")


def fragile(run: ChaosRun) -> None:
    """Breaks as soon as three reads in a row fail."""
    read_with_retries(run)


def test_a_passing_body_runs_once_per_plan_and_counts_what_fired() -> None:
    result = run_chaos(lambda run: read_with_retries(run, tries=20), families=[DB],
                       max_examples=50, seed=1, allow=(ConnectionError,), must_fire=["db.read"])
    assert result.plans >= 50
    assert result.failures == 0
    assert result.fired["db.read"] > 0
    assert faults.armed_failpoints() == []


def test_a_failure_shrinks_to_the_smallest_plan_and_prints_it() -> None:
    with pytest.raises(ChaosFailure) as info:
        run_chaos(fragile, families=[DB, "clock"], seed=7)
    failure = info.value
    assert len(failure.plan) == 1  # one fault at db.read is the essence; clock skews go
    assert failure.plan.faults[0].failpoint == "db.read"
    assert isinstance(failure.error, ConnectionError)
    text = str(failure)
    assert text.startswith("chaos: after ")
    assert "the body raised ConnectionError: gave up after 4 failures" in text
    assert '"failpoint": "db.read"' in text
    assert "replay: pytest_resilience.chaos.replay(body, faults.FaultPlan.from_json(" in text
    assert faults.armed_failpoints() == []


def test_the_same_seed_finds_the_same_minimal_plan() -> None:
    plans = []
    for _ in range(2):
        with pytest.raises(ChaosFailure) as info:
            run_chaos(fragile, families=[DB], seed=11)
        plans.append(info.value.plan)
    assert plans[0] == plans[1]


def test_replay_repeats_the_failure_with_an_identical_history() -> None:
    with pytest.raises(ChaosFailure) as info:
        run_chaos(fragile, families=[DB, "clock"], seed=5)
    found = info.value
    saved = FaultPlan.from_json(found.plan.to_json())
    with pytest.raises(ChaosFailure) as again:
        replay(fragile, saved, families=[DB])
    assert again.value.history.to_jsonl() == found.history.to_jsonl()
    assert len(found.history) > 0


def rate_sensitive(run: ChaosRun) -> None:
    """Fails when exactly the 2nd and 3rd of five reads fail (rate triggers decide)."""
    outcomes = []
    for _ in range(5):
        try:
            faults.failpoint("db.read")
            outcomes.append(True)
        except ConnectionError:
            outcomes.append(False)
    assert outcomes[1:3] != [False, False], outcomes


def test_rate_decisions_come_from_hypothesis_and_replay_exactly() -> None:
    rate_only = failpoints({"db.read": [Action.raise_(ConnectionError)]})
    with pytest.raises(ChaosFailure) as info:  # never FlakyFailure: no outside RNG
        run_chaos(rate_sensitive, families=[rate_only], seed=3, max_examples=300)
    found = info.value
    with pytest.raises(ChaosFailure) as again:
        replay(rate_sensitive, FaultPlan.from_json(found.plan.to_json()), families=[rate_only])
    assert again.value.history.to_jsonl() == found.history.to_jsonl()


def test_replay_random_returns_decisions_then_never() -> None:
    rng = ReplayRandom([0.25, 0.5])
    assert [rng.random(), rng.random(), rng.random()] == [0.25, 0.5, NEVER]
    assert rng.decisions == [0.25, 0.5, NEVER]


def test_a_fault_that_never_fires_fails_instead_of_passing_vacuously() -> None:
    with pytest.raises(ChaosVacuous) as info:
        run_chaos(lambda run: None, families=[DB], max_examples=20, seed=1,
                  must_fire=["db.read"], sometimes=["recovered"])
    assert str(info.value).startswith(
        "chaos: 20 plan(s) passed, but fault(s) ['db.read'] never fired and path(s) "
        "['recovered'] were never reached, so the run proved nothing about them.")


def test_sometimes_counts_reached_paths() -> None:
    def body(run: ChaosRun) -> None:
        failures = read_with_retries(run, tries=20)
        run.sometimes(failures > 0, "recovered after a failure")

    result = run_chaos(body, families=[DB], max_examples=40, seed=2, allow=(ConnectionError,),
                       sometimes=["recovered after a failure"])
    assert result.reached["recovered after a failure"] > 0


def test_checks_judge_each_history() -> None:
    def at_most_two_fired(history: History) -> Verdict:
        fired = history.select("fault.fired")
        return Verdict("fired", len(fired) <= 2, f"{len(fired)} faults fired",
                       tuple(fired))

    with pytest.raises(ChaosFailure) as info:
        run_chaos(lambda run: read_with_retries(run, tries=20), families=[DB], seed=4,
                  allow=(ConnectionError,), checks=[at_most_two_fired])
    assert "checker 'fired' found a violation:\n  3 faults fired" in str(info.value)


def test_time_is_virtual_and_scheduled_skews_apply() -> None:
    def body(run: ChaosRun) -> None:
        wall = run.clock.time()
        run.clock.sleep(3600.0)  # an hour, instantly
        assert run.clock.time() - wall >= 3600.0 - 10, "wall clock stepped back"

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=["clock"], seed=1, horizon=10.0)
    plan = info.value.plan
    assert len(plan) == 1
    assert plan.scheduled[0].kind == "skew"
    assert plan.scheduled[0].params["seconds"] == -11.0
    assert any(e.kind == "clock.skew" for e in info.value.history)


def test_async_bodies_run_on_the_virtual_clock() -> None:
    async def body(run: ChaosRun) -> None:
        for _ in range(3):
            try:
                await faults.afailpoint("db.read")
                return
            except ConnectionError:
                await run.clock.asleep(5.0)
        raise ConnectionError("down")

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=[DB], seed=9)
    assert info.value.history.select("fault.fired")[-1].time == 10.0
