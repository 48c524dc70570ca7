"""watch_sleeps: the block's sleeps are virtual and recorded; its time reads follow."""

from __future__ import annotations

import asyncio
import threading
import time
import types
from collections.abc import Callable

import pytest

from pytest_resilience import History, VirtualClock, recording
from pytest_resilience.observe import watch_sleeps

UserModule = Callable[[str, str], types.ModuleType]

SOURCE = """
import asyncio, time
from time import sleep, monotonic

def backoff(n):
    for i in range(n):
        time.sleep(0.1 * 2 ** i)
    return time.monotonic()

def early_bound():
    sleep(1.5)
    return monotonic()

def deadline_loop(limit, now=time.monotonic):
    start, turns = now(), 0
    while now() - start < limit:
        time.sleep(1)
        turns += 1
    return turns

class Cache:
    now = staticmethod(time.time)

async def nap(seconds):
    await asyncio.sleep(seconds)
    await asyncio.sleep(0)
    return time.time()
"""


def test_sleeps_advance_the_clock_and_become_events(
        user_module: UserModule, timeline: tuple[VirtualClock, History]) -> None:
    clock, history = timeline
    mod = user_module("sleepy_user", SOURCE)
    with watch_sleeps(clock):
        assert mod.backoff(3) == pytest.approx(0.7)
        assert mod.early_bound() == pytest.approx(2.2)
    assert [(e.kind, e.time, e.attrs["seconds"], e.attrs["via"], e.attrs["caller"])
            for e in history] == [
        ("sleep.called", 0.0, 0.1, "time.sleep", "backoff"),
        ("sleep.called", pytest.approx(0.1), 0.2, "time.sleep", "backoff"),
        ("sleep.called", pytest.approx(0.3), 0.4, "time.sleep", "backoff"),
        ("sleep.called", pytest.approx(0.7), 1.5, "time.sleep", "early_bound"),
    ]
    assert clock.monotonic() == pytest.approx(2.2)


def test_a_deadline_loop_sees_time_pass(user_module: UserModule) -> None:
    mod = user_module("deadline_user", SOURCE)
    clock = VirtualClock()
    with watch_sleeps(clock):
        assert mod.deadline_loop(30) == 30  # default argument now=time.monotonic rebound
        assert mod.Cache.now() == clock.time()  # staticmethod(time.time) in a class
    assert mod.deadline_loop.__defaults__ == (time.monotonic,)
    assert mod.Cache.__dict__["now"].__func__ is time.time


def test_asyncio_sleeps_are_virtual_and_zero_sleeps_are_yields(
        user_module: UserModule, timeline: tuple[VirtualClock, History]) -> None:
    clock, history = timeline
    mod = user_module("async_user", SOURCE)
    with watch_sleeps(clock):
        wall = asyncio.run(mod.nap(5))
    assert wall == clock.time()
    assert clock.monotonic() == 5
    assert [(e.attrs["via"], e.attrs["seconds"]) for e in history] == [("asyncio.sleep", 5.0)]


def test_clock_sleeps_are_recorded_and_the_history_clock_is_the_default(
        timeline: tuple[VirtualClock, History]) -> None:
    clock, history = timeline
    with watch_sleeps():
        clock.sleep(2)
        clock.sleep(0)
    assert [(e.attrs["via"], e.time) for e in history] == [("clock.sleep", 0.0)]
    assert "sleep" not in vars(clock)


def test_everything_is_restored(user_module: UserModule) -> None:
    mod = user_module("restored_user", SOURCE)
    before = (time.sleep, asyncio.sleep, time.monotonic, time.time, time.perf_counter_ns,
              mod.sleep, mod.monotonic)
    with pytest.raises(RuntimeError), watch_sleeps(VirtualClock()):
        raise RuntimeError("the block failed")
    assert (time.sleep, asyncio.sleep, time.monotonic, time.time, time.perf_counter_ns,
            mod.sleep, mod.monotonic) == before


def test_other_threads_and_the_standard_library_keep_real_time() -> None:
    clock = VirtualClock(start=0.0)
    seen: list[float] = []
    with watch_sleeps(clock):
        worker = threading.Thread(target=lambda: seen.append(time.monotonic()))
        worker.start()
        worker.join()
        stdlib = {"__name__": "json.fake", "time": time}
        exec("value = time.monotonic()", stdlib)  # code "from" the stdlib
        here = time.monotonic()
    assert here == 0.0
    assert seen[0] == pytest.approx(stdlib["value"], abs=60)  # both real: not virtual 0.0
    assert seen[0] > 1.0


def test_clocks_false_leaves_time_reads_real() -> None:
    clock = VirtualClock()
    with watch_sleeps(clock, clocks=False):
        time.sleep(10)
        assert time.monotonic() != clock.monotonic()
    assert clock.monotonic() == 10


def test_no_clock_is_an_error_naming_the_fix() -> None:
    with recording(History()), pytest.raises(ValueError) as info, watch_sleeps():
        pass
    assert str(info.value) == (
        "watch_sleeps() found no clock: pass the test's clock (watch_sleeps(clock) with the "
        "`clock` fixture) or record into a History(clock=...).")
    with pytest.raises(TypeError) as bad:
        watch_sleeps("clock")  # type: ignore[arg-type]
    assert str(bad.value) == ("clock='clock' is not a Clock. Pass the test's clock, e.g. "
                              "watch_sleeps(clock) with the `clock` fixture.")


def test_a_negative_sleep_is_refused_like_time_sleep() -> None:
    with watch_sleeps(VirtualClock()), pytest.raises(ValueError) as info:
        time.sleep(-1)
    assert str(info.value) == "sleep length must be non-negative"
