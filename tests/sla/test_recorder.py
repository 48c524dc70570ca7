"""SLARecorder: measure/record on a VirtualClock, error accounting, open loop, verify."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import BudgetExceeded
from pytest_resilience._events import recording
from pytest_resilience.sla._recorder import SLARecorder


def test_measure_times_on_the_virtual_clock_exactly() -> None:
    clock = VirtualClock()
    sla = SLARecorder("p50<=10ms", clock=clock)
    for i in range(100):
        with sla.measure("search") as call:
            clock.advance(0.004 if i % 2 else 0.006)
        assert call.seconds == pytest.approx(0.004 if i % 2 else 0.006)
    stats = sla.stats("search")
    assert stats.latency.count == 100
    assert stats.errors == 0
    assert stats.latency.min == pytest.approx(0.004)
    assert stats.latency.max == pytest.approx(0.006)
    assert stats.throughput == pytest.approx(100 / 0.5)
    assert [v.passed for v in sla.verify()] == [True]


def test_errors_count_toward_the_error_rate_and_propagate() -> None:
    clock = VirtualClock()
    sla = SLARecorder("error_rate<5%", clock=clock)
    for i in range(100):
        try:
            with sla.measure("write"):
                clock.advance(0.001)
                if i % 10 == 0:
                    raise ConnectionError("boom")
        except ConnectionError:
            pass
    with sla.measure("write") as call:
        call.mark_error()
    stats = sla.stats("write")
    assert (stats.calls, stats.errors, stats.latency.count) == (101, 11, 90)
    assert stats.error_rate == pytest.approx(11 / 101)
    with pytest.raises(BudgetExceeded) as info:
        sla.verify()
    assert info.value.budget == "error_rate<5%"
    assert info.value.observed == pytest.approx(11 / 101)
    assert "error_rate=10.9% breaks error_rate<5% (101 samples)" in str(info.value)


def test_budget_without_operation_covers_all_and_scoped_one_only_its_own() -> None:
    clock = VirtualClock()
    sla = SLARecorder("max<50ms", "read: max<5ms", "write: max<5ms", clock=clock)
    sla.record("read", 0.001)
    sla.record("write", 0.020)
    verdicts = {v.budget.text: v.passed for v in sla.check()}
    assert verdicts == {"max<50ms": True, "read: max<5ms": True, "write: max<5ms": False}
    with pytest.raises(BudgetExceeded, match=r"1 of 3 SLA budget\(s\) not met:\n  \[write\]"):
        sla.verify()


def test_unverifiable_budget_fails_instead_of_inventing_a_number() -> None:
    sla = SLARecorder("p99<1s", clock=VirtualClock())
    for _ in range(50):
        sla.record("op", 0.001)
    with pytest.raises(BudgetExceeded, match="not enough samples: p99 needs 1000, got 50"):
        sla.verify()


def test_open_loop_charges_a_stall_to_the_calls_queued_behind_it() -> None:
    clock = VirtualClock()
    closed, opened = SLARecorder(clock=clock), SLARecorder(clock=clock)
    for i in range(200):  # closed loop: one 1 s stall shows as one slow call
        with closed.measure("op"):
            clock.advance(1.0 if i == 100 else 0.001)
    for i, call in enumerate(opened.open_loop("op", rate=100, count=200)):
        with call:
            clock.advance(1.0 if i == 100 else 0.001)
    naive, honest = closed.stats("op").latency, opened.stats("op").latency
    assert naive.count == honest.count == 200
    assert naive.quantile(0.9) == pytest.approx(0.001, rel=0.01)
    # the ~99 calls scheduled during the stall started late and are charged for it
    assert honest.quantile(0.9) > 0.5
    assert honest.max == pytest.approx(1.0, rel=0.01)


def test_async_measure_and_open_loop_match_sync() -> None:
    clock = VirtualClock()
    sla = SLARecorder("p50<=2ms", clock=clock)

    async def main() -> None:
        async for call in sla.aopen_loop("op", rate=1000, count=40):
            async with call:
                await clock.asleep(0.002)
        with pytest.raises(KeyError):
            async with sla.measure("op"):
                raise KeyError("x")

    asyncio.run(main())
    stats = sla.stats("op")
    assert (stats.latency.count, stats.errors) == (40, 1)
    # each call takes 2 ms but is scheduled every 1 ms: latency from intended start grows
    assert stats.latency.max == pytest.approx(0.002 + 39 * 0.001, rel=0.01)


def test_samples_are_events_only_when_asked() -> None:
    clock = VirtualClock()
    with recording() as history:
        SLARecorder(clock=clock).record("op", 0.1)
        SLARecorder(clock=clock, emit_samples=True).record("op", 0.2, ok=False)
    events = history.select(kind="sla.sample")
    assert [(e.source, e.attrs["seconds"], e.attrs["ok"]) for e in events] == [("op", 0.2, False)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0, "count": 1}, r"rate=0 is not a rate\. Pass calls per second > 0\."),
        ({"rate": 10, "count": -1}, r"count=-1 is not a call count\. Pass an integer >= 0\."),
    ],
)
def test_open_loop_refuses_bad_schedules(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next(SLARecorder(clock=VirtualClock()).open_loop("op", **kwargs))  # type: ignore[arg-type]


def test_bad_names_and_budgets_fail_at_once() -> None:
    with pytest.raises(ValueError, match=r"operation='' is not an operation name"):
        SLARecorder().record("", 0.1)
    with pytest.raises(ValueError, match=r"metric 'p9x' is not known"):
        SLARecorder("p9x<1s")


@pytest.mark.parametrize(("budgets", "error", "message"), [
    (("",), ValueError,
     "budgets[0]: budget='' has no comparison (<, <=, >, >=) between a metric and a value. "),
    ((None,), TypeError, "budgets[0]: budget=None is not a string. "),
])
def test_a_wrong_budget_names_budgets_and_its_index(budgets: tuple[Any, ...],
                                                    error: type[Exception],
                                                    message: str) -> None:
    with pytest.raises(error) as info:
        SLARecorder(*budgets)
    assert str(info.value).startswith(message)
    assert str(info.value).endswith("Write '[operation:]metric op value', e.g. 'p95<200ms', "
                                    "'p(99.9)<=1s', 'error_rate<1%', 'throughput>50/s', "
                                    "'max<2s', 'search:mean<20ms', 'amplification<1.2'.")
