"""Failpoints, triggers, actions, plans and scopes: the fault core."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import faults
from faults import Action, Fault, FaultPlan, FaultScope, Trigger
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import FaultInjected
from pytest_resilience._events import History


def read() -> str:
    faults.failpoint("db.read")
    return "row"


def outcomes(n: int) -> list[str]:
    result = []
    for _ in range(n):
        try:
            result.append(read())
        except FaultInjected:
            result.append("fault")
    return result


def test_inactive_failpoint_is_a_no_op() -> None:
    assert faults.armed_failpoints() == []
    assert faults.failpoint("db.read") is None
    assert faults.failpoint("db.read", default=7) == 7
    assert asyncio.run(faults.afailpoint("db.read", 3)) == 3


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        (Trigger.always(), ["fault"] * 5),
        (Trigger.nth(3), ["row", "row", "fault", "row", "row"]),
        (Trigger.first(2), ["fault", "fault", "row", "row", "row"]),
        (Trigger.rate(0.0), ["row"] * 5),
        (Trigger.rate(1.0), ["fault"] * 5),
    ],
)
def test_triggers(trigger: Trigger, expected: list[str]) -> None:
    with faults.inject("db.read", trigger=trigger) as active:
        assert outcomes(5) == expected
    assert active.calls("db.read") == 5
    assert active.fired("db.read") == expected.count("fault")
    assert outcomes(2) == ["row", "row"]  # disarmed on exit


def test_after_trigger_follows_the_activation_clock() -> None:
    clock = VirtualClock()
    with faults.inject("db.read", trigger=Trigger.after(10), clock=clock):
        assert outcomes(1) == ["row"]
        clock.advance(9.5)
        assert outcomes(1) == ["row"]
        clock.advance(0.5)
        assert outcomes(2) == ["fault", "fault"]


def test_rate_trigger_is_reproducible_by_seed() -> None:
    def run(seed: int) -> list[str]:
        with faults.inject("db.read", trigger=Trigger.rate(0.5), seed=seed):
            return outcomes(40)

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert 5 < run(7).count("fault") < 35


def test_raise_action_uses_the_given_instance_or_class() -> None:
    err = ConnectionResetError("peer reset")
    with faults.inject("db.read", Action.raise_(err)), pytest.raises(ConnectionResetError) as info:
        read()
    assert info.value is err
    with faults.inject("db.read", Action.raise_(TimeoutError)), pytest.raises(TimeoutError):
        read()
    with faults.inject("db.read"), pytest.raises(FaultInjected) as injected:
        read()
    assert injected.value.failpoint == "db.read"
    assert str(injected.value) == "fault injected at failpoint 'db.read'"


def test_return_action_and_instrument_skip_the_call() -> None:
    calls: list[int] = []

    @faults.instrument("cache.get")
    def get(key: int) -> str:
        calls.append(key)
        return f"value-{key}"

    assert get(1) == "value-1"
    with faults.inject("cache.get", Action.returns("stale"), trigger=Trigger.nth(2)):
        assert [get(2), get(3), get(4)] == ["value-2", "stale", "value-4"]
    assert calls == [1, 2, 4]
    assert faults.failpoint("x") is None
    with faults.inject("x", Action.returns(None)):
        assert faults.failpoint("x", default="d") is None


def test_delay_action_sleeps_on_the_activation_clock() -> None:
    clock = VirtualClock()
    with faults.inject("db.read", Action.delay(2.5), clock=clock):
        assert read() == "row"
        assert read() == "row"
    assert clock.monotonic() == 5.0


def test_call_action_and_ordering_of_several_faults_on_one_failpoint() -> None:
    log: list[str] = []
    clock = VirtualClock()
    plan = FaultPlan([
        Fault("db.read", Action.call(lambda: log.append("called"))),
        Fault("db.read", Action.delay(1.0)),
        Fault("db.read", Action.raise_(OSError("disk")), Trigger.nth(2)),
    ])
    with faults.activate(plan, clock=clock):
        assert read() == "row"
        with pytest.raises(OSError, match="disk"):
            read()
    assert log == ["called", "called"]
    assert clock.monotonic() == 2.0


def test_async_failpoint_delays_on_virtual_time_and_awaits_calls() -> None:
    clock = VirtualClock()
    log: list[str] = []

    async def note() -> None:
        log.append("awaited")

    @faults.instrument("api.fetch")
    async def fetch() -> str:
        return "fresh"

    async def main() -> list[str]:
        plan = FaultPlan([
            Fault("api.fetch", Action.delay(3)),
            Fault("api.fetch", Action.call(note)),
            Fault("api.fetch", Action.returns("cached"), Trigger.nth(2)),
        ])
        async with faults.activate(plan, clock=clock):
            return [await fetch(), await fetch()]

    assert asyncio.run(main()) == ["fresh", "cached"]
    assert clock.monotonic() == 6.0
    assert log == ["awaited", "awaited"]


def test_async_failpoint_raises() -> None:
    async def main() -> None:
        with faults.inject("api.fetch", Action.raise_(ConnectionError)):
            await faults.afailpoint("api.fetch")

    with pytest.raises(ConnectionError):
        asyncio.run(main())


def test_firings_are_events_on_the_given_history() -> None:
    history = History()
    clock = VirtualClock(start=3.0)
    with faults.inject("db.read", trigger=Trigger.nth(2), clock=clock, history=history):
        outcomes(3)
    assert history.kinds() == ["fault.armed", "fault.fired", "fault.disarmed"]
    fired = history.select(kind="fault.fired")[0]
    assert fired.source == "failpoint:db.read"
    assert fired.time == 3.0
    assert fired.attrs == {"family": "failpoint", "action": "raise()", "trigger": "nth(2)",
                           "call": 2, "fault": 0}


def test_nested_activations_stack_and_unwind() -> None:
    with faults.inject("db.read", Action.returns("outer")):
        with faults.inject("db.read", Action.raise_(KeyError)):
            assert faults.failpoint("db.read") == "outer"  # earlier activation fires first
        assert faults.armed_failpoints() == ["db.read"]
    assert faults.armed_failpoints() == []


def test_starting_twice_is_refused_and_stopping_twice_is_harmless() -> None:
    active = faults.inject("db.read")
    active.start()
    try:
        with pytest.raises(RuntimeError, match="already active"):
            active.start()
    finally:
        active.stop()
    active.stop()
    assert not active.active


def test_disarm_all_stops_leaked_activations() -> None:
    faults.inject("a").start()
    faults.inject("b").start()
    assert faults.disarm_all() == ["a", "b"]
    assert faults.armed_failpoints() == []


def test_plan_json_round_trip() -> None:
    plan = FaultPlan(
        [
            Fault("db.write", Action.raise_(ConnectionError("reset by peer")), Trigger.nth(3)),
            Fault("db.write", Action.raise_(TimeoutError), Trigger.rate(0.25)),
            Fault("cache.get", Action.returns({"hit": False}), Trigger.first(2)),
            Fault("api.call", Action.delay(1.5), Trigger.after(30)),
            Fault("api.call", Action.call(gc.collect)),
            Fault("x", Action.raise_()),
        ],
        seed=42,
    )
    data = json.loads(plan.to_json())
    assert data["version"] == 2
    assert data["faults"][0] == {
        "failpoint": "db.write",
        "trigger": {"kind": "nth", "value": 3},
        "action": {"kind": "raise", "exception": "builtins:ConnectionError",
                   "args": ["reset by peer"]},
    }
    again = FaultPlan.from_json(plan.to_json())
    assert again.to_dict() == plan.to_dict()
    assert again.seed == 42
    exc = again.faults[0].action.exception
    assert isinstance(exc, ConnectionError)
    assert exc.args == ("reset by peer",)


@given(
    st.lists(
        st.builds(
            Fault,
            st.sampled_from(["a", "b.c", "svc.write"]),
            st.one_of(
                st.builds(Action.delay, st.floats(0, 100)),
                st.builds(Action.returns, st.integers() | st.text(max_size=5) | st.none()),
                st.sampled_from([Action.raise_(), Action.raise_(OSError), Action.raise_(KeyError)]),
            ),
            st.one_of(
                st.just(Trigger.always()),
                st.builds(Trigger.nth, st.integers(1, 50)),
                st.builds(Trigger.first, st.integers(1, 50)),
                st.builds(Trigger.rate, st.floats(0, 1)),
                st.builds(Trigger.after, st.floats(0, 1e4)),
            ),
        ),
        max_size=6,
    ),
    st.integers(0, 2**32),
)
def test_any_plan_survives_json(plan_faults: list[Fault], seed: int) -> None:
    plan = FaultPlan(plan_faults, seed=seed)
    assert FaultPlan.from_json(plan.to_json()).to_dict() == plan.to_dict()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Trigger.nth(0), "n=0 is not valid. Pass an integer >= 1."),
        (lambda: Trigger.rate(1.5), "p=1.5 is not a probability. Pass a number in [0, 1]."),
        (lambda: Trigger.after(-1), "seconds=-1 is not valid. Pass a finite number >= 0."),
        (lambda: Action.delay(-2), "seconds=-2 is not valid. Pass a finite number >= 0."),
        (lambda: Fault("", Action.raise_()),
         "failpoint='' is not a failpoint name. Pass a non-empty string such as 'db.write'."),
        (lambda: Trigger.from_dict({"kind": "sometimes"}),
         "kind='sometimes' is not a known trigger kind. Pass one of always, nth, first, rate, "
         "after."),
        (lambda: FaultPlan.from_dict({"version": 9}),
         "version=9 is not a supported plan version. Pass one of versions 1, 2 (what this "
         "release reads)."),
        (lambda: Action.returns(object()).to_dict(), None),
    ],
)
def test_bad_input_names_the_fix(build, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as info:
        build()
    if message is not None:
        assert str(info.value) == message
    else:
        assert "is not JSON-serialisable" in str(info.value)


def test_type_errors_name_the_fix() -> None:
    with pytest.raises(TypeError, match=r"is not an exception\. Pass an exception instance"):
        Action.raise_("boom")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is not callable"):
        Action.call(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^faults='db\.write' is not an item of faults\. "
                       r"Pass a list of Fault\(\.\.\.\)\.$"):
        FaultPlan(["db.write"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^n=1\.5 is not valid\. Pass an integer >= 1\.$"):
        Trigger.first(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no importable name"):
        Action.call(lambda: None).to_dict()


def test_scope_undoes_everything_last_first() -> None:
    order: list[str] = []
    clock = VirtualClock()
    with FaultScope(clock=clock, seed=1) as scope:
        scope.inject("db.read")
        scope.activate(Fault("db.write", Action.delay(1)))
        scope.callback(order.append, "callback")
        assert faults.armed_failpoints() == ["db.read", "db.write"]
        with pytest.raises(FaultInjected):
            read()
        assert scope.fired() == 1
    assert faults.armed_failpoints() == []
    assert order == ["callback"]
    with pytest.raises(RuntimeError, match="closed"):
        scope.inject("db.read")


def test_scope_seed_drives_rate_decisions() -> None:
    def run(seed: int) -> list[str]:
        with FaultScope(seed=seed) as scope:
            scope.inject("db.read", trigger=Trigger.rate(0.5))
            return outcomes(30)

    assert run(3) == run(3)
    assert run(3) != run(4)
