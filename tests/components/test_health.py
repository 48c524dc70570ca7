"""HealthRegistry: aggregation, concurrency, timeouts, JSON output, events."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import recording
from pytest_resilience._health import HealthRegistry


def test_all_healthy_degraded_and_unhealthy() -> None:
    registry = HealthRegistry(clock=VirtualClock())
    registry.register("db", lambda: True)
    registry.register("cache", lambda: None, critical=False)
    assert registry.run().status == "healthy"

    def cache_down() -> bool:
        return False

    registry.register("cache", cache_down, critical=False)
    report = registry.run()
    assert report.status == "degraded"
    assert {c.name: c.status for c in report.checks} == {"db": "healthy", "cache": "unhealthy"}

    def db_down() -> None:
        raise ConnectionError("refused")

    registry.register("db", db_down)
    report = registry.run()
    assert report.status == "unhealthy"
    db = next(c for c in report.checks if c.name == "db")
    assert db.error == "ConnectionError('refused')"


def test_async_checks_run_concurrently_and_hanging_one_times_out() -> None:
    clock = VirtualClock()
    registry = HealthRegistry(clock=clock)

    async def slow_but_fine() -> bool:
        await clock.asleep(2.0)
        return True

    async def hangs() -> bool:
        await clock.asleep(3600)
        return True

    registry.register("a", slow_but_fine, timeout=5.0)
    registry.register("b", slow_but_fine, timeout=5.0)
    registry.register("stuck", hangs, timeout=3.0, critical=False)
    with recording() as history:
        report = asyncio.run(registry.arun())
    assert clock.monotonic() == 3.0  # concurrently: not 2 + 2 + 3
    assert report.status == "degraded"
    stuck = next(c for c in report.checks if c.name == "stuck")
    assert stuck.status == "timeout"
    assert stuck.duration == 3.0
    assert stuck.error == "no answer within 3.0s"
    events = {e.source: e.attrs for e in history.select("health.check")}
    assert events["a"] == {"status": "healthy", "duration": 2.0, "error": None}
    assert events["stuck"]["status"] == "timeout"


def test_hanging_sync_check_does_not_block_the_others() -> None:
    release = threading.Event()
    registry = HealthRegistry(clock=VirtualClock())
    registry.register("blocked", lambda: release.wait(30), timeout=0.05)
    registry.register("fine", lambda: True)
    try:
        report = registry.run()
    finally:
        release.set()
    assert report.status == "unhealthy"
    assert {c.name: c.status for c in report.checks} == {"blocked": "timeout", "fine": "healthy"}
    for thread in threading.enumerate():
        if thread.name.startswith("health-check-"):
            thread.join(5)
    assert not [t for t in threading.enumerate() if t.name.startswith("health-check-")]


def test_sync_check_slower_than_its_timeout_on_the_clock_is_a_timeout() -> None:
    clock = VirtualClock()
    registry = HealthRegistry(clock=clock)
    registry.register("slow", lambda: clock.sleep(10), timeout=2.0)
    check = registry.run().checks[0]
    assert check.status == "timeout"
    assert check.error == "took 10.000s, timeout 2.0s"


def test_json_output() -> None:
    registry = HealthRegistry(clock=VirtualClock())
    registry.register("db", lambda: True)
    data = json.loads(registry.run().to_json())
    assert data == {"status": "healthy", "checks": {"db": {
        "status": "healthy", "critical": True, "duration": 0.0, "error": None}}}


def test_bad_registration() -> None:
    registry = HealthRegistry()
    with pytest.raises(ValueError, match="timeout=0 is not a valid timeout"):
        registry.register("x", lambda: True, timeout=0)
    with pytest.raises(TypeError, match="check=3 is not callable"):
        registry.register("x", 3)  # type: ignore[arg-type]
