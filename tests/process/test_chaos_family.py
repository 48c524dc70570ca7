"""The subprocess chaos family: generated, shrunk, applied to real commands, undone."""

from __future__ import annotations

import signal
import subprocess

import pytest
from hypothesis import find, given, settings

from faults import FaultPlan, Scheduled
from faults.families import subprocess_failures
from faults.strategies import fault_plans
from pytest_resilience.chaos import ChaosFailure, ChaosRun, run_chaos

CLI = subprocess_failures("sh", max_start=2.0)
PLANS = fault_plans([CLI], max_faults=3, horizon=4.0)


@settings(max_examples=60, deadline=None)
@given(PLANS)
def test_subprocess_plans_stay_inside_their_bounds(plan: FaultPlan) -> None:
    for entry in plan.scheduled:
        assert entry.family == "subprocess"
        assert 0 <= entry.at <= 4.0
        assert 0.01 <= entry.params["duration"] <= 4.0
        if entry.kind == "exit":
            assert 1 <= entry.params["code"] <= 255
        elif entry.kind == "killed":
            assert entry.params["signal"] in (signal.SIGKILL, signal.SIGTERM,
                                              signal.SIGSEGV, signal.SIGABRT)
        elif entry.kind == "slow_start":
            assert 0.01 <= entry.params["seconds"] <= 2.0
        else:
            assert entry.kind in ("not_found", "hang")
            assert set(entry.params) == {"duration"}


def test_subprocess_plans_shrink_to_one_short_late_missing_command() -> None:
    plan = find(PLANS, lambda p: len(p) >= 1)
    assert plan.scheduled == (Scheduled("subprocess", "not_found", 4.0, {"duration": 0.01}),)


def load(run: ChaosRun) -> bytes:
    """The CLI call under test: a 5 s timeout, an error on a non-zero exit."""
    done = subprocess.run(["sh", "-c", "echo loaded"], capture_output=True, timeout=5,
                          check=True)
    return done.stdout


def test_a_caller_that_trusts_the_cli_fails_and_shrinks_to_the_first_call_it_misses() -> None:
    def body(run: ChaosRun) -> None:
        for _ in range(4):                                 # calls at t = 0, 1, 2, 3
            assert load(run) == b"loaded\n"
            run.clock.sleep(1.0)

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=[CLI], horizon=4.0, seed=2, max_examples=40)
    assert info.value.plan.scheduled == (
        Scheduled("subprocess", "not_found", 3.0, {"duration": 0.01}),)
    assert isinstance(info.value.error, FileNotFoundError)


def test_a_caller_that_handles_every_failure_passes_every_plan() -> None:
    def body(run: ChaosRun) -> None:
        for _ in range(4):
            try:
                run.sometimes(load(run) == b"loaded\n", "loaded")
            except (OSError, subprocess.SubprocessError):
                run.reached("degraded")                    # reported, not crashed
            run.clock.sleep(1.0)

    result = run_chaos(body, families=[CLI], horizon=4.0, seed=3, max_examples=25,
                       sometimes=["loaded", "degraded"])
    assert result.failures == 0
    assert result.fired["subprocess"] > 0


def test_the_family_needs_its_command_and_known_kinds() -> None:
    with pytest.raises(ValueError) as named:
        fault_plans(["subprocess"])
    assert str(named.value) == ("family='subprocess' needs its target from the test. Pass "
                                "subprocess_failures(command) in families=[...] instead of "
                                "the name 'subprocess'.")
    with pytest.raises(ValueError) as kinds:
        subprocess_failures("sh", kinds=["hang", "segfault"])
    assert str(kinds.value) == ("kinds=['hang', 'segfault'] names no behaviour or unknown ones "
                                "(['segfault']). Pass some of: not_found, hang, exit, "
                                "killed, slow_start.")
