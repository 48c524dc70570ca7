"""``faults.strategies``: generated plans, their JSON, and shrinking toward the essence."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from faults import Action, FaultPlan, Scheduled
from faults.families import clock_skews, failpoints, register_family
from faults.strategies import fault_plans
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import History
from pytest_resilience.chaos._schedule import FaultSchedule

SITES = {"db.read": [Action.raise_(ConnectionError)], "db.write": [Action.raise_(TimeoutError)]}
PLANS = fault_plans([failpoints(SITES, max_delay=0.5), clock_skews(max_seconds=60)],
                    max_faults=3, horizon=5.0, calls=8)


@settings(max_examples=60, deadline=None)
@given(PLANS)
def test_generated_plans_stay_inside_their_bounds(plan: FaultPlan) -> None:
    assert len(plan) <= 3
    for fault in plan.faults:
        assert fault.failpoint in SITES
        if fault.trigger.kind in ("nth", "first"):
            assert 1 <= fault.trigger.value <= 8
        if fault.action.kind == "delay":
            assert 0 < fault.action.seconds <= 0.5
    assert [s.at for s in plan.scheduled] == sorted(s.at for s in plan.scheduled)
    for entry in plan.scheduled:
        assert 0 <= entry.at <= 5.0
        assert 1 <= abs(entry.params["seconds"]) <= 60


@settings(max_examples=40, deadline=None)
@given(PLANS, st.lists(st.floats(0, 1, exclude_max=True), max_size=3),
       st.lists(st.one_of(st.integers(0, 2**40), st.floats(0, 1, exclude_max=True)),
                max_size=3))
def test_plans_round_trip_through_json(plan: FaultPlan, decisions: list[float],
                                       draws: list[float | int]) -> None:
    plan = plan.with_draws(decisions, draws)
    assert FaultPlan.from_json(plan.to_json()) == plan


def test_the_failpoint_part_is_what_activation_arms() -> None:
    plan = find(PLANS, lambda p: len(p.faults) == 1 and len(p.scheduled) == 1)
    assert plan.failpoint_plan() == FaultPlan(plan.faults, seed=plan.seed)


def test_shrinking_removes_faults() -> None:
    plan = find(PLANS, lambda p: len(p) >= 2)
    assert len(plan) == 2


def test_shrinking_shortens_durations() -> None:
    plan = find(PLANS, lambda p: any(f.action.kind == "delay" for f in p.faults))
    assert len(plan) == 1
    assert plan.faults[0].action.seconds == 0.001


def test_shrinking_moves_triggers_later() -> None:
    plan = find(PLANS, lambda p: any(f.trigger.kind == "nth" for f in p.faults))
    assert plan.faults[0].trigger.value == 8
    skew = find(PLANS, lambda p: bool(p.scheduled))
    assert skew.scheduled[0].at == 5.0
    assert abs(skew.scheduled[0].params["seconds"]) == 1


def test_swarm_switches_sites_off_per_plan() -> None:
    only_write = find(fault_plans([failpoints(SITES)], max_faults=4),
                      lambda p: len(p.faults) == 4
                      and {f.failpoint for f in p.faults} == {"db.write"})
    assert len(only_write) == 4


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_faults": -1}, "max_faults=-1 is not valid. Pass an integer >= 0."),
    ({"horizon": 0}, "horizon=0 is not valid. Pass seconds > 0."),
    ({"calls": 0}, "calls=0 is not valid. Pass an integer >= 1."),
])
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        fault_plans(["clock"], **kwargs)
    assert str(info.value) == message


def test_unknown_family_names_list_the_known_ones() -> None:
    with pytest.raises(ValueError) as info:
        fault_plans(["failpoints"])
    assert str(info.value).startswith(
        "families=[..., 'failpoints'] names a family that is not registered. Pass a Family "
        "object (failpoints({...}) needs its site names)")


def test_failpoint_sites_must_carry_actions() -> None:
    with pytest.raises(TypeError) as info:
        failpoints({"db": ["raise"]})  # type: ignore[list-item]
    assert str(info.value) == ("sites['db']=['raise'] is not a list of Actions. Pass e.g. "
                               "[Action.raise_(ConnectionError)].")


class Brownout:
    """A custom family: scheduled 'brownout' entries recorded when applied."""

    name = "brownout"

    def __init__(self) -> None:
        self.applied: list[float] = []

    def entries(self, draw: Any, *, horizon: float, calls: int) -> Any:
        return st.builds(lambda at: Scheduled("brownout", "dim", at, {}),
                         st.sampled_from([1.0, 2.0]))

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        self.applied.append(clock.monotonic())
        return nullcontext()


def test_a_family_is_pluggable_and_applied_on_time() -> None:
    family = Brownout()
    register_family("brownout", lambda: family)
    plan = find(fault_plans(["brownout"], max_faults=2), lambda p: len(p) == 2)
    clock = VirtualClock()
    schedule = FaultSchedule(plan.scheduled, {"brownout": family}, clock=clock, history=None)
    clock.sleep(0.5)
    assert family.applied == []  # not started: nothing applies
    with schedule:
        assert family.applied == []
        clock.sleep(2.0)
        assert clock.monotonic() == 2.5
        assert family.applied == [1.0, 1.0]  # at their own time, inside the sleep


def test_memory_pressure_plans_shrink_to_the_threshold_that_breaks() -> None:
    psutil = pytest.importorskip("psutil", reason="memory family reads psutil")
    if not sys.platform.startswith("linux"):
        pytest.skip("faults.memory.memory_pressure needs Linux /proc")
    from pytest_resilience.chaos import ChaosFailure, ChaosRun, run_chaos

    def body(run: ChaosRun) -> None:
        run.clock.sleep(10.0)
        assert psutil.virtual_memory().percent < 90, "host memory at 90% or more"

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=["memory"], seed=2, max_examples=50)
    plan = info.value.plan
    assert len(plan) == 1
    assert plan.scheduled[0].params["percent"] == 90.0
    assert psutil.virtual_memory().percent < 100  # restored after the run
