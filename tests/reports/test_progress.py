"""Chaos runs' progress on the terminal: what it says, and when it is shown."""

from __future__ import annotations

import pytest

from pytest_resilience import VirtualClock
from pytest_resilience._plugin.progress import ChaosProgress

pytest_plugins = ["pytester"]
pytest.importorskip("hypothesis", reason="chaos runs draw their plans with Hypothesis")

SUITE = """
import pytest
from faults import Action, failpoint

@pytest.mark.chaos(failpoints={"db.read": [Action.raise_(ConnectionError("x"))]},
                   allow=[ConnectionError], max_examples=12)
def test_reads(chaos):
    failpoint("db.read")

def test_after():
    pass
"""


def test_the_line_counts_plans_failures_rate_and_time_left(
    pytestconfig: pytest.Config,
) -> None:
    clock = VirtualClock()
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    progress = ChaosProgress(reporter, "t.py::test_x", 100, clock=clock)
    clock.advance(0.5)
    progress.done = 40
    assert progress.line() == "chaos test_x: 40/100 plans · 0 failing · 80 plans/s · ~1s left"
    progress.done, progress.failures = 57, 1
    assert progress.line() == ("chaos test_x: 57/100 plans · 1 failing · 114 plans/s · "
                               "shrinking the failure")


def test_shown_when_asked_and_the_next_result_starts_a_new_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_chaos=SUITE)
    result = pytester.runpytest("--resilience-progress=always")
    result.assert_outcomes(passed=2)
    # pytester splits the rewritten line at each carriage return
    result.stdout.re_match_lines([r"^chaos test_reads: 1/12 plans · 0 failing · [0-9.]+ plans/s",
                                  r"^chaos test_reads: 1[23] plans in [0-9.]+s, 0 failing\s*$",
                                  r"^test_chaos.py \.\.\s"], consecutive=False)


@pytest.mark.parametrize("argv", [[], ["-q", "--resilience-progress=auto"],
                                  ["--resilience-progress=never"]],
                         ids=["not-a-tty", "quiet", "never"])
def test_silent_unless_asked(pytester: pytest.Pytester, argv: list[str]) -> None:
    pytester.makepyfile(test_chaos=SUITE)
    result = pytester.runpytest(*argv)
    result.assert_outcomes(passed=2)
    assert "chaos test_reads:" not in result.stdout.str()
