"""Recovery-time budgets: after the faults are lifted, back inside the budget within N s."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_resilience import History
from pytest_resilience._errors import BudgetExceeded
from pytest_resilience._recovery import (
    fault_windows,
    judge_recovery,
    parse_duration,
    recovery_times,
)
from pytest_resilience.sla import Budget

P95 = Budget.parse("search: p95<200ms")


def build(*steps: tuple[Any, ...]) -> History:
    """A history from (time, kind, source, attrs) steps."""
    history = History()
    for time, kind, source, attrs in steps:
        history.append(kind, source, time=time, attrs=attrs)
    return history


def sample(time: float, seconds: float, ok: bool = True,
           op: str = "search") -> tuple[Any, ...]:
    return (time, "sla.sample", op, {"seconds": seconds, "ok": ok})


def fault(time: float, kind: str, source: str = "proxy") -> tuple[Any, ...]:
    return (time, f"fault.{kind}", source, {"family": "network"})


def test_fault_windows_join_overlapping_faults_and_keep_an_open_one() -> None:
    history = build(fault(1, "armed", "a"), fault(2, "armed", "b"), fault(3, "disarmed", "a"),
                    fault(4, "disarmed", "b"), fault(6, "armed", "a"), fault(7, "disarmed", "a"),
                    fault(9, "armed", "c"))
    assert fault_windows(history) == [(1, 4), (6, 7), (9, None)]


def test_time_to_recover_ends_with_the_last_slow_sample_after_the_window() -> None:
    history = build(sample(0.5, 0.01), fault(1, "armed"), sample(2, 1.0), fault(3, "disarmed"),
                    sample(3.5, 0.3), sample(4.5, 0.3), sample(5, 0.01), sample(6, 0.01),
                    sample(7, 0.25), *(sample(8 + i, 0.01) for i in range(40)))
    [window] = recovery_times(history, [P95])
    # 3.5 and 4.5 are slow; from 5 on the samples meet p95 together (7's outlier is 1 of 43)
    assert window == {"budget": "search: p95<200ms", "operation": "search",
                      "window": [1, 3], "samples": 45, "recovered_after": 1.5}


def test_a_first_sample_inside_the_budget_is_an_instant_recovery() -> None:
    history = build(fault(1, "armed"), fault(2, "disarmed"), sample(2.5, 0.01))
    assert recovery_times(history, [P95])[0]["recovered_after"] == 0.0


def test_an_operation_that_never_gets_back_has_no_recovery_time() -> None:
    history = build(fault(1, "armed"), fault(2, "disarmed"), sample(3, 0.5), sample(4, 0.5))
    assert recovery_times(history, [P95])[0]["recovered_after"] is None


def test_errors_count_for_error_rate_budgets_and_samples_are_per_operation() -> None:
    budget = Budget.parse("search: error_rate<1%")
    history = build(fault(1, "armed"), fault(2, "disarmed"), sample(3, 0.01, ok=False),
                    sample(4, 0.01, ok=False), sample(5, 0.01, ok=False, op="ingest"),
                    *(sample(6 + i, 0.01) for i in range(5)))
    assert recovery_times(history, [budget])[0]["recovered_after"] == 2.0


def test_judging_writes_one_recovery_budget_event_per_budget() -> None:
    history = build(fault(1, "armed"), fault(2, "disarmed"), sample(3, 0.5), sample(6, 0.5),
                    sample(7, 0.01), sample(8, 0.01))
    broken = judge_recovery(history, [P95], 3.0, source="test_x")
    assert isinstance(broken, BudgetExceeded)
    assert str(broken) == (
        "1 of 1 recovery budget(s) not met:\n"
        "  search: p95<200ms: back inside 4s after the fault window t=1s..2s (breaks "
        "recovery<3s)")
    [event] = history.select("sla.budget")
    assert event.source == "test_x"
    assert dict(event.attrs) == {
        "budget": "search: p95<200ms, recovery<3s", "metric": "recovery",
        "operation": "search", "threshold": 3.0, "observed": 4.0, "passed": False,
        "reason": "search: p95<200ms: back inside 4s after the fault window t=1s..2s "
                  "(breaks recovery<3s)",
        "windows": [{"budget": "search: p95<200ms", "operation": "search", "window": [1, 2],
                     "samples": 4, "recovered_after": 4.0}]}


@pytest.mark.parametrize(("within", "passed"), [(5.0, True), (3.0, False)])
def test_the_budget_holds_when_every_window_recovers_in_time(within: float,
                                                             passed: bool) -> None:
    history = build(fault(1, "armed"), fault(2, "disarmed"), sample(3, 0.5), sample(6, 0.5),
                    sample(7, 0.01), fault(10, "armed"), fault(11, "disarmed"),
                    sample(12, 0.01))
    broken = judge_recovery(history, [P95], within)
    assert (broken is None) is passed
    [event] = history.select("sla.budget")
    assert event.attrs["passed"] is passed
    assert event.attrs["observed"] == 4.0  # the worst of the two windows (4 s and 0 s)
    assert [w["recovered_after"] for w in event.attrs["windows"]] == [4.0, 0.0]


@pytest.mark.parametrize(("steps", "reason"), [
    ((sample(1, 0.01),),
     "search: p95<200ms: recovery not measured, no fault was lifted in the test"),
    ((fault(1, "armed"), sample(2, 0.01)),
     "search: p95<200ms: recovery not measured, a fault was still active when the budget "
     "was checked: lift it inside the test (a `with` block)"),
    ((fault(1, "armed"), fault(2, "disarmed")),
     "search: p95<200ms: no sample after the fault window t=1s..2s ended, so recovery "
     "within 5s is not shown"),
    ((fault(1, "armed"), fault(2, "disarmed"), sample(3, 0.3)),
     "search: p95<200ms: still outside the budget at the last of 1 samples after the fault "
     "window t=1s..2s"),
])
def test_an_unshown_recovery_fails_and_says_why(steps: tuple[Any, ...], reason: str) -> None:
    history = build(*steps)
    broken = judge_recovery(history, [P95], 5.0)
    assert str(broken) == f"1 of 1 recovery budget(s) not met:\n  {reason}"


def test_durations_are_parsed_and_bad_ones_refused() -> None:
    assert [parse_duration(v) for v in (5, 2.5, "5s", "500ms", "2min")] == [
        5.0, 2.5, 5.0, 0.5, 120.0]
    for bad in ("5 parsecs", -1, True, "fast"):
        with pytest.raises(ValueError) as info:
            parse_duration(bad)
        assert str(info.value) == (f"recovery={bad!r} is not a duration. Pass seconds (5) or "
                                   "a string with a unit: '500ms', '5s', '2min'.")


SERVICE = '''
import pytest
import faults
from faults import Action

WARMUP = {warmup}

@pytest.mark.sla("search: p95<200ms", recovery="{recovery}", clock="virtual")
def test_search_recovers(sla, clock, history):
    cold_until = [0.0]

    def search():
        with sla.measure("search"):
            faults.failpoint("backend")
            clock.sleep(0.3 if clock.monotonic() < cold_until[0] else 0.01)

    for _ in range(20):
        search()
        clock.sleep(0.1)
    with faults.inject("backend", Action.delay(1.0), clock=clock):
        for _ in range(5):
            search()
    cold_until[0] = clock.monotonic() + WARMUP  # the cache is cold after the outage
    for _ in range(300):
        search()
        clock.sleep(0.1)
'''


def test_the_sla_marker_takes_a_recovery_budget(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SERVICE.format(warmup=3.0, recovery="5s"))
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_slow_recovery_fails_the_test_like_a_broken_budget(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SERVICE.format(warmup=3.0, recovery="2s"))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "BudgetExceeded: 1 of 1 recovery budget(s) not met:" in out
    match = re.search(r"search: p95<200ms: back inside (\S+) after the fault window "
                      r"t=(\S+)\.\.(\S+) \(breaks recovery<2s\)", out)
    assert match is not None, out
    assert match.group(1) == "3.1s"  # 8 cold calls (0.3 s, 0.1 s apart): the last ends at 3.1 s


def test_a_bad_recovery_keyword_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.sla("p95<200ms", recovery="soon")
def test_x(sla):
    pass
''')
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert ("@pytest.mark.sla: recovery='soon' is not a duration. Pass seconds (5) or a "
            "string with a unit: '500ms', '5s', '2min'.") in result.stdout.str()
