"""trace_operation: duration, outcome, peak RSS delta, context."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import recording
from pytest_resilience.observability._context import current_context
from pytest_resilience.observability._tracing import trace_operation


def test_block_records_duration_outcome_and_context() -> None:
    clock = VirtualClock()
    with recording() as history, trace_operation("load", clock=clock, model="bert"):
        assert current_context()["operation"] == "load"
        assert current_context()["model"] == "bert"
        clock.sleep(1.5)
    (event,) = history.select("trace.operation")
    assert event.source == "load"
    assert event.attrs["duration"] == 1.5
    assert event.attrs["outcome"] == "ok"
    assert event.attrs["error"] is None
    assert isinstance(event.attrs["peak_rss_delta"], int)
    assert event.attrs["peak_rss_delta"] >= 0
    assert len(event.attrs["correlation_id"]) == 32
    assert dict(current_context()) == {}


def test_error_outcome_is_recorded_and_the_error_propagates() -> None:
    with recording() as history, pytest.raises(OSError), trace_operation("io"):
        raise OSError("disk")
    assert history[0].attrs["outcome"] == "error"
    assert history[0].attrs["error"] == "OSError('disk')"


def test_decorator_sync_and_async_each_call_is_one_event() -> None:
    clock = VirtualClock()

    @trace_operation("step", clock=clock)
    def step(n: int) -> int:
        clock.sleep(n)
        return n * 2

    @trace_operation("astep", clock=clock)
    async def astep(n: int) -> int:
        await clock.asleep(n)
        return n

    with recording() as history:
        assert [step(1), step(2)] == [2, 4]
        assert asyncio.run(astep(3)) == 3
    assert [(e.source, e.attrs["duration"]) for e in history] == [
        ("step", 1.0), ("step", 2.0), ("astep", 3.0)]


def test_cancelled_task_is_recorded_as_cancelled() -> None:
    async def main() -> None:
        async with trace_operation("wait"):
            raise asyncio.CancelledError

    with recording() as history, pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    assert history[0].attrs["outcome"] == "cancelled"


def test_peak_rss_delta_sees_a_large_allocation() -> None:
    code = (
        "import json\n"
        "from pytest_resilience._events import recording\n"
        "from pytest_resilience.observability._tracing import trace_operation\n"
        "with recording() as h:\n"
        "    with trace_operation('alloc'):\n"
        "        block = bytearray(96 * 1024 * 1024)\n"
        "        block[::4096] = b'x' * len(block[::4096])\n"
        "print(json.dumps(h[0].attrs['peak_rss_delta']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) >= 48 * 1024 * 1024


def test_name_is_validated() -> None:
    with pytest.raises(TypeError) as info:
        trace_operation("")
    assert str(info.value) == "name='' is not an operation name. Pass a non-empty string."
