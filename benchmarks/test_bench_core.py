"""Harness core costs: an inactive failpoint, an armed one, VirtualClock sleeps, emit.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_core.py --benchmark-only``.
The target for an inactive failpoint is under 100 ns per call.
"""

from __future__ import annotations

import asyncio

import pytest

import faults
from faults import Action, Trigger
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import emit, recording

N = 10_000


def _loop_baseline() -> None:
    for _ in range(N):
        pass


def _loop_failpoints() -> None:
    fp = faults.failpoint
    for _ in range(N):
        fp("db.read")


def test_empty_loop_baseline(benchmark: pytest.FixtureDef) -> None:  # type: ignore[type-arg]
    """The loop itself, to subtract from the per-call figures below (10,000 iterations)."""
    benchmark(_loop_baseline)


def test_inactive_failpoint_x10000(benchmark) -> None:  # type: ignore[no-untyped-def]
    """10,000 calls with nothing armed anywhere (target: < 100 ns each)."""
    assert faults.armed_failpoints() == []
    benchmark(_loop_failpoints)


def test_failpoint_while_another_is_armed_x10000(benchmark) -> None:  # type: ignore[no-untyped-def]
    """10,000 calls of an unarmed failpoint while another one is armed."""
    with faults.inject("other.point", Action.returns(1)):
        benchmark(_loop_failpoints)


def test_armed_failpoint_not_firing(benchmark) -> None:  # type: ignore[no-untyped-def]
    """One armed failpoint whose trigger does not fire (counting + decision)."""
    with faults.inject("db.read", trigger=Trigger.nth(10**9)):
        benchmark(faults.failpoint, "db.read")


def test_virtual_clock_sleep(benchmark) -> None:  # type: ignore[no-untyped-def]
    """VirtualClock.sleep: advances time, no real waiting."""
    clock = VirtualClock()
    benchmark(clock.sleep, 0.5)


def test_virtual_clock_asleep_100_tasks(benchmark) -> None:  # type: ignore[no-untyped-def]
    """100 concurrent asyncio tasks sleeping 1..100 virtual seconds, woken in order."""

    def run() -> float:
        clock = VirtualClock()

        async def main() -> None:
            await asyncio.gather(*(clock.asleep(i) for i in range(1, 101)))

        asyncio.run(main())
        return clock.monotonic()

    assert benchmark(run) == 100.0


def test_emit_with_nobody_listening(benchmark) -> None:  # type: ignore[no-untyped-def]
    """emit() when no history is active and no listener is registered."""
    benchmark(emit, "retry.attempt", "svc", None, attempt=1)


def test_emit_into_active_history(benchmark) -> None:  # type: ignore[no-untyped-def]
    """emit() recording into an active history."""
    clock = VirtualClock()
    with recording():
        benchmark(emit, "retry.attempt", "svc", clock, attempt=1)
