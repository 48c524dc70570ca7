"""always / sometimes across the plans of a run, adversarial SLA search, required coverage,
and the ``chaos.run`` event a chaos test writes into its own history."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

import faults
from faults import Action, Fault, FaultPlan, Trigger
from faults.families import failpoints
from pytest_resilience.chaos import (
    BudgetBroken,
    ChaosFailure,
    ChaosRun,
    ChaosVacuous,
    PropertyFailed,
    replay,
    run_chaos,
)

DB = failpoints({"db.read": [Action.raise_(ConnectionError)]})


def reads(run: ChaosRun, tries: int) -> int:
    failures = 0
    for _ in range(tries):
        try:
            faults.failpoint("db.read")
            return failures
        except ConnectionError:
            failures += 1
            run.clock.sleep(1.0)
    raise ConnectionError("gave up")


def test_always_fails_the_plan_and_shrinks_to_the_smallest_breaking_one() -> None:
    def body(run: ChaosRun) -> None:
        try:
            failures = reads(run, 10)
        except ConnectionError:
            failures = 10
        run.always(failures < 3, "at most two failed reads")

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=[DB], seed=5)
    assert isinstance(info.value.error, PropertyFailed)
    assert "the property always 'at most two failed reads' was false" in str(info.value)
    assert len(info.value.plan) == 1


def test_an_always_swallowed_by_the_body_still_fails() -> None:
    def body(run: ChaosRun) -> None:
        with contextlib.suppress(PropertyFailed):
            run.always(run.clock.monotonic() > 1, "time moved")

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=["clock"], seed=1, max_examples=5)
    assert str(info.value.error) == "always 'time moved' was false"


def test_sometimes_is_checked_across_plans_without_being_declared() -> None:
    def body(run: ChaosRun) -> None:
        run.sometimes(run.fired() > 5, "more than five faults fired")
        reads(run, 20)

    with pytest.raises(ChaosVacuous) as info:
        run_chaos(body, families=[DB], seed=1, max_examples=20, allow=[ConnectionError])
    assert "path(s) ['more than five faults fired'] were never reached" in str(info.value)
    properties = info.value.result.properties
    assert properties["more than five faults fired"] == {
        "kind": "sometimes", "true": 0, "false": 20, "plans": 0}


def test_properties_are_counted_over_the_run() -> None:
    def body(run: ChaosRun) -> None:
        failures = reads(run, 20)
        run.sometimes(failures > 0, "recovered after a failure")
        run.always(failures < 20, "a read got through")

    result = run_chaos(body, families=[DB], seed=2, max_examples=30, allow=[ConnectionError])
    recovered = result.properties["recovered after a failure"]
    assert recovered["kind"] == "sometimes"
    assert 0 < recovered["plans"] <= recovered["true"]
    assert result.properties["a read got through"]["false"] == 0
    assert result.reached["recovered after a failure"] == recovered["plans"]


def test_a_name_used_as_always_and_sometimes_is_refused() -> None:
    def body(run: ChaosRun) -> None:
        run.always(True, "x")
        run.sometimes(True, "x")

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=["clock"], seed=1, max_examples=3)
    assert str(info.value.error) == ("property 'x' is used as both always and sometimes. Give "
                                     "each its own name.")


# -- adversarial SLA search ------------------------------------------------------------------
SLOW = failpoints({"backend": [Action.raise_(ConnectionError)]}, max_delay=1.0)


def search_body(run: ChaosRun) -> None:
    for _ in range(10):
        with run.measure("search"):
            with contextlib.suppress(ConnectionError):  # a fallback, as fast as usual
                faults.failpoint("backend")
            run.clock.sleep(0.01)


def test_the_search_finds_the_cheapest_plan_breaking_the_budget() -> None:
    with pytest.raises(ChaosFailure) as info:
        run_chaos(search_body, families=[SLOW], seed=3, maximize=["search: p95<200ms"])
    failure = info.value
    assert isinstance(failure.error, BudgetBroken)
    [fault] = failure.plan.faults
    assert fault.action.kind == "delay"
    assert fault.action.seconds == pytest.approx(0.19)  # 10 ms of work + 190 ms: 200 ms
    assert fault.trigger == Trigger.nth(10)  # the latest call: the cheapest place
    assert str(failure).startswith("chaos: after ")
    assert ("this is the cheapest set of faults that takes search p95 over 200ms (p95=200ms "
            "in this plan)") in str(failure)
    again = FaultPlan.from_json(failure.plan.to_json())
    with pytest.raises(ChaosFailure) as replayed:
        replay(search_body, again, families=[SLOW], maximize=["search: p95<200ms"])
    assert str(replayed.value.error) == str(failure.error)


def test_the_search_steers_generation_by_each_plans_figure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import hypothesis

    scores: list[tuple[float, str]] = []
    real_target = hypothesis.target

    def spy(observation: float, *, label: str = "") -> float:
        scores.append((observation, label))
        return real_target(observation, label=label)

    monkeypatch.setattr(hypothesis, "target", spy)
    result = run_chaos(search_body, families=["clock"], seed=1, max_examples=10,
                       maximize=["search: p95<200ms"])
    assert result.plans >= 1
    assert scores
    assert {label for _, label in scores} == {"search: p95<200ms"}
    assert all(score == pytest.approx(0.01 / 0.2) for score, _ in scores)  # 10 ms of 200 ms


def test_each_plan_writes_the_searched_budget_into_its_history() -> None:
    plan = FaultPlan([Fault("backend", Action.delay(0.5), Trigger.nth(2))])
    with pytest.raises(ChaosFailure) as info:
        replay(search_body, plan, families=[SLOW], maximize=["search: p95<200ms"])
    [event] = info.value.history.select("sla.budget")
    assert event.attrs["passed"] is False
    assert event.attrs["observed"] == pytest.approx(0.51)
    assert event.attrs["operation"] == "search"


# -- the plugin --------------------------------------------------------------------------
DUMP = '''
import json
from pathlib import Path
import pytest

@pytest.fixture(autouse=True)
def dump_history(request):
    yield
    history = request.node.funcargs.get("history")
    if history is not None:
        Path(request.node.name + ".jsonl").write_text(history.to_jsonl())
'''

SERVICE = '''
import pytest
import faults
from faults import Action

def search(chaos):
    for _ in range(10):
        with chaos.measure("search"):
            try:
                faults.failpoint("backend")
            except ConnectionError:
                pass
            chaos.clock.sleep(0.01)
'''


def events(folder: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]


def test_a_chaos_run_writes_its_results_into_the_tests_history(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(DUMP)
    pytester.makepyfile(SERVICE + '''
@pytest.mark.chaos(failpoints={"backend": [Action.raise_(ConnectionError)]},
                   families=["clock"], max_examples=25)
def test_passes(chaos):
    search(chaos)
    chaos.sometimes(chaos.fired() > 0, "a backend call failed")
    chaos.always(chaos.clock.monotonic() >= 0.09, "ten calls took their time")

@pytest.mark.chaos(failpoints={"backend": [Action.raise_(ConnectionError)]}, max_faults=2)
def test_fails(chaos):
    search(chaos)
    assert chaos.fired() < 2, "two failed calls"
''')
    result = pytester.runpytest("--resilience-seed=4")
    result.assert_outcomes(passed=1, failed=1)
    passed = events(pytester.path, "test_passes")
    [run] = [e for e in passed if e["kind"] == "chaos.run"]
    attrs = run["attrs"]
    assert run["source"].endswith("::test_passes")
    assert attrs["plans"] >= 25
    assert attrs["failures"] == 0
    assert attrs["fired"]["failpoint"] > 0
    assert set(attrs["fired"]) <= {"failpoint", "clock"}
    assert (attrs["plan"], attrs["replay"], attrs["error"]) == (None, None, None)
    assert attrs["properties"]["a backend call failed"]["plans"] > 0
    coverage = attrs["coverage"]
    assert coverage["operations"] == ["search"]
    assert coverage["cells"]["search"]["failpoint"]["always: ten calls took their time"] == \
        "PASS"
    verdicts = {e["attrs"]["checker"]: e["attrs"]["passed"] for e in passed
                if e["kind"] == "check.verdict"}
    assert verdicts == {"always: ten calls took their time": True,
                        "sometimes: a backend call failed": True}
    failed = events(pytester.path, "test_fails")
    [run] = [e for e in failed if e["kind"] == "chaos.run"]
    attrs = run["attrs"]
    assert attrs["failures"] >= 1
    assert attrs["error"] == "the body raised AssertionError: two failed calls"
    assert len(attrs["plan"]["faults"]) in (1, 2)
    assert attrs["replay"].startswith("pytest '")
    assert "--resilience-replay=" in attrs["replay"]


def test_an_adversarial_search_under_xfail_strict_proves_the_budget_breaks(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(DUMP)
    pytester.makepyfile(SERVICE + '''
BACKEND = {"backend": [Action.raise_(ConnectionError)]}

@pytest.mark.xfail(strict=True, reason="one slow backend call breaks p95: fragile on purpose")
@pytest.mark.chaos(failpoints=BACKEND, max_delay=1.0, maximize="search: p95<200ms")
def test_fragile(chaos):
    search(chaos)

@pytest.mark.chaos(failpoints=BACKEND, max_delay=1.0, maximize="search: p95<200ms")
def test_shown(chaos):
    search(chaos)

@pytest.mark.xfail(strict=True, reason="never breaks: strict xfail turns that into a failure")
@pytest.mark.chaos(failpoints=BACKEND, maximize="search: p95<200ms", max_examples=20)
def test_robust(chaos):
    search(chaos)
''')
    result = pytester.runpytest("--resilience-seed=6", "-rxX")
    result.assert_outcomes(xfailed=1, failed=2)
    out = result.stdout.str()
    assert "this is the cheapest set of faults that takes search p95 over 200ms" in out
    assert "replay: pytest 'test_an_adversarial_search_under_xfail_strict_proves_the_budget_" \
        "breaks.py::test_shown' --resilience-replay=" in out
    assert "[XPASS(strict)] never breaks" in out
    [run] = [e for e in events(pytester.path, "test_shown") if e["kind"] == "chaos.run"]
    assert run["attrs"]["search"] == {"budgets": ["search: p95<200ms"],
                                      "broken": "search: p95<200ms",
                                      "observed": pytest.approx(0.2)}
    assert run["attrs"]["error"].startswith(
        "this is the cheapest set of faults that takes search p95 over 200ms")


def test_required_coverage_fails_a_test_that_never_exercised_its_cells(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SERVICE + '''
BACKEND = {"backend": [Action.raise_(ConnectionError)]}

@pytest.mark.chaos(failpoints=BACKEND, families=["clock"], max_examples=30, horizon=0.05,
                   require_coverage=[("search", "failpoint"), ("search", "clock")])
def test_covered(chaos):
    search(chaos)  # ten calls over 0.1 s: any clock fault (at t <= 0.05) hits the later ones

@pytest.mark.chaos(failpoints=BACKEND, max_examples=10,
                   require_coverage=[("search", "failpoint"), ("search", "network"),
                                     ("upload", "failpoint")])
def test_vacuous(chaos):
    search(chaos)

@pytest.mark.chaos(failpoints=BACKEND, require_coverage=["search:network"])
def test_misspelt(chaos):
    search(chaos)
''')
    result = pytester.runpytest("--resilience-seed=2")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert ("but required coverage ['search x network', 'upload x failpoint'] was never "
            "exercised, so the run proved nothing about them") in out
    assert ("@pytest.mark.chaos require_coverage=['search:network'] is not a list of cells. "
            "Pass tuples (operation, family) or (operation, family, property), e.g. "
            "[('search', 'network'), ('search', 'network', 'search: p95<200ms')].") in out
