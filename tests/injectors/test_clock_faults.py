"""Clock faults on a VirtualClock and on the process's clocks, reaching early-bound clocks."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import threading
import time
from time import monotonic as aliased_monotonic

import cachetools
import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from faults import clock as clock_faults
from pytest_resilience._clock import DEFAULT_WALL_START, VirtualClock
from pytest_resilience._events import recording

HOUR = 3600.0


def real_time() -> float:
    hatch = time_machine.escape_hatch
    return hatch.time.time() if hatch.is_travelling() else time.time()


# -- third-party-style code that binds its clock early ---------------------------------
def deadline_default(timer=time.monotonic) -> float:
    return timer()


def deadline_kwdefault(*, timer=time.monotonic) -> float:
    return timer()


PARTIAL = functools.partial(time.monotonic)


class SlotTimer:
    __slots__ = ("timer",)

    def __init__(self) -> None:
        self.timer = time.monotonic


class AttrTimer:
    def __init__(self) -> None:
        self.timer = time.monotonic


def stamp() -> dt.datetime:
    """A library that reads datetime.now() directly."""
    return dt.datetime.now(dt.UTC)


# -- the virtual clock -----------------------------------------------------------------
def test_skew_on_a_virtual_clock_moves_wall_time_and_is_undone() -> None:
    clock = VirtualClock()
    with clock_faults.skew(-HOUR, clock=clock) as fault:
        assert clock.time() == DEFAULT_WALL_START - HOUR
        assert clock.monotonic() == 0.0
        assert fault.active
    assert clock.time() == DEFAULT_WALL_START
    assert not fault.active


def test_monotonic_skew_on_a_virtual_clock_is_time_that_passed() -> None:
    clock = VirtualClock()
    with clock_faults.skew(10, target="both", clock=clock):
        assert (clock.monotonic(), clock.time()) == (10.0, DEFAULT_WALL_START + 20)
    assert (clock.monotonic(), clock.time()) == (10.0, DEFAULT_WALL_START + 10)


def test_jump_and_drift_on_a_virtual_clock() -> None:
    clock = VirtualClock()
    target = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    with clock_faults.jump(target, clock=clock):
        assert clock.time() == target.timestamp()
        with clock_faults.drift(2.0, clock=clock):
            clock.advance(5)
            assert clock.time() == target.timestamp() + 10
        assert clock.time() == target.timestamp() + 5  # what the drift gained is undone
        clock.advance(5)
        assert clock.time() == target.timestamp() + 10
    assert clock.rate == 1.0
    assert clock.time() == DEFAULT_WALL_START + 10


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=6))
def test_nested_virtual_skews_restore_exactly(offsets: list[float]) -> None:
    clock = VirtualClock()
    faults = [clock_faults.skew(s, clock=clock) for s in offsets]
    for fault in faults:
        fault.start()
    assert clock.time() == pytest.approx(DEFAULT_WALL_START + sum(offsets))
    for fault in reversed(faults):
        fault.stop()
    assert clock.time() == pytest.approx(DEFAULT_WALL_START)


# -- the process's clocks ----------------------------------------------------------------
def test_ttlcache_entries_expire_after_a_monotonic_skew() -> None:
    before = cachetools.TTLCache(maxsize=8, ttl=60)
    before["k"] = "v"
    with clock_faults.skew(HOUR, target="monotonic") as fault:
        assert "k" not in before
        during = cachetools.TTLCache(maxsize=8, ttl=60)
        during["k"] = "v"
        assert "k" in during
    assert "cachetools.TTLCache.__init__ default argument #0" in fault.rebound
    fresh = cachetools.TTLCache(maxsize=8, ttl=60)
    fresh["k"] = "v"
    assert "k" in fresh  # the default timer is the real one again


def test_ttlcache_on_wall_time_expires_after_a_jump() -> None:
    cache = cachetools.TTLCache(maxsize=8, ttl=60, timer=time.time)
    cache["k"] = "v"
    with clock_faults.jump(real_time() + HOUR):
        assert "k" not in cache


def test_every_early_bound_monotonic_reference_moves_and_is_restored() -> None:
    slot, attr = SlotTimer(), AttrTimer()
    # lambdas read each name when called, after the fault rebound it
    readers = {
        "module alias": lambda: aliased_monotonic(),  # noqa: PLW0108
        "default argument": deadline_default,
        "keyword default": deadline_kwdefault,
        "partial": PARTIAL,
        "slot": lambda: slot.timer(),  # noqa: PLW0108
        "attribute": lambda: attr.timer(),  # noqa: PLW0108
        "late-bound": lambda: time.monotonic(),  # noqa: PLW0108
    }
    start = time.monotonic()
    with clock_faults.skew(HOUR, target="monotonic") as fault:
        seen = {name: read() - start for name, read in readers.items()}
    assert all(HOUR <= v < HOUR + 60 for v in seen.values()), seen
    after = {name: read() - start for name, read in readers.items()}
    assert all(0 <= v < 60 for v in after.values()), after
    assert time.monotonic is aliased_monotonic
    assert PARTIAL.func is aliased_monotonic
    assert deadline_default.__defaults__ == (aliased_monotonic,)
    assert len(fault.rebound) >= 7


def test_the_standard_library_waiting_machinery_stays_on_real_time() -> None:
    real = threading._time  # type: ignore[attr-defined]
    with clock_faults.skew(HOUR, target="monotonic"):
        assert threading._time is real  # type: ignore[attr-defined]
        assert threading.Event().wait(0.001) is False


def test_datetime_now_in_a_library_sees_the_skew() -> None:
    with clock_faults.skew(-HOUR):
        skewed = stamp()
    assert abs((stamp() - skewed).total_seconds() - HOUR) < 60


def test_ntp_step_back_moves_wall_time_while_monotonic_keeps_going() -> None:
    wall, mono = time.time(), time.monotonic()
    with clock_faults.skew(-HOUR):
        assert time.time() < wall - HOUR + 60
        assert time.monotonic() >= mono
    assert time.time() >= wall


def test_process_drift_scales_wall_time() -> None:
    with clock_faults.drift(1000.0):
        real0, fake0 = real_time(), time.time()
        sum(range(200_000))  # let some real time pass, without sleeping
        real1, fake1 = real_time(), time.time()
    ratio = (fake1 - fake0) / (real1 - real0)
    assert 900 < ratio < 1100


def test_process_drift_on_monotonic_moves_early_bound_references() -> None:
    cache = cachetools.TTLCache(maxsize=8, ttl=1)  # monotonic, bound at import
    cache["k"] = "v"
    with clock_faults.drift(1000.0, target="monotonic") as fault:
        real0, mono0, wall0 = time.perf_counter(), deadline_default(), time.time()
        while time.perf_counter() - real0 < 0.005:  # let real time pass, without sleeping
            pass
        real1, mono1, wall1 = time.perf_counter(), deadline_default(), time.time()
        assert "k" not in cache  # 5 ms of real time are 5 s here, past the 1 s TTL
    ratio = (mono1 - mono0) / (real1 - real0)
    assert 900 < ratio < 1100
    assert wall1 - wall0 < 1  # target="monotonic" leaves wall time alone
    assert "cachetools.TTLCache.__init__ default argument #0" in fault.rebound
    assert deadline_default.__defaults__ == (aliased_monotonic,)


def test_a_monotonic_drift_starts_where_a_skew_left_it_and_both_undo() -> None:
    start = time.monotonic()
    with clock_faults.skew(HOUR, target="monotonic"):
        skewed = deadline_default()
        with clock_faults.drift(10.0, target="both"):
            assert 0 <= deadline_default() - skewed < 60  # no step when the drift starts
            assert time.monotonic() - start >= HOUR
        assert HOUR <= deadline_default() - start < HOUR + 60
    assert 0 <= deadline_default() - start < 60


def test_asyncio_keeps_running_under_clock_faults() -> None:
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        loop_start = loop.time()
        async with clock_faults.skew(HOUR, target="both"), \
                clock_faults.drift(5.0, target="both"):
            await asyncio.sleep(0.001)
            assert time.monotonic() - loop.time() >= HOUR - 60
            timed_out = False
            try:
                await asyncio.wait_for(asyncio.sleep(0.001), timeout=5)
            except TimeoutError:
                timed_out = True
        return loop.time() - loop_start, timed_out

    elapsed, timed_out = asyncio.run(main())
    assert not timed_out
    assert elapsed < 60  # the loop's clock never saw the hour


def test_faults_are_events() -> None:
    with recording() as history, clock_faults.skew(-HOUR):
        pass
    skew = history.select("clock.skew")[0].attrs
    assert (skew["fault"], skew["seconds"], skew["target"], skew["on"]) == (
        "skew", -HOUR, "wall", "process")
    assert history.kinds() == ["fault.armed", "clock.skew", "fault.fired", "fault.disarmed"]
    assert {e.attrs["family"] for e in history.select("fault.")} == {"clock"}


def test_everything_is_restored_after_nested_faults() -> None:
    loop_time = asyncio.BaseEventLoop.time
    defaults = cachetools.TTLCache.__init__.__defaults__
    with clock_faults.skew(HOUR, target="both"), clock_faults.jump(0.0), \
            clock_faults.skew(60, target="monotonic"):
        assert time.time() < 60
    assert not time_machine.escape_hatch.is_travelling()
    assert asyncio.BaseEventLoop.time is loop_time
    assert cachetools.TTLCache.__init__.__defaults__ == defaults
    assert abs(time.time() - real_time()) < 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: clock_faults.skew(-1, target="monotonic"), ValueError,
         "seconds=-1 would move monotonic time backwards. Pass seconds >= 0, or "
         "target='wall' to step wall time back (monotonic keeps going)."),
        (lambda: clock_faults.skew(1, target="cpu"), ValueError,
         "target='cpu' is not a clock. Pass 'wall', 'monotonic' or 'both'."),
        (lambda: clock_faults.drift(0), ValueError,
         "rate=0 is not a valid drift rate. Pass a finite number > 0 (1.0 = no drift; at "
         "most 1e+06); use skew() to step wall time backwards."),
        (lambda: clock_faults.drift(2.0, target="both", clock=VirtualClock()), ValueError,
         "target='both' cannot drift on a VirtualClock: its monotonic time only moves with "
         "advance(). Pass target='wall', or clock=None to drift the process's monotonic "
         "clock."),
        (lambda: clock_faults.jump(dt.datetime(2030, 1, 1)), ValueError,
         "to=datetime.datetime(2030, 1, 1, 0, 0) is a naive datetime. Pass an aware "
         "datetime, e.g. datetime(2030, 1, 1, tzinfo=timezone.utc)."),
        (lambda: clock_faults.skew(1, clock=object()), TypeError,  # type: ignore[arg-type]
         "clock=<object object at"),
    ],
)
def test_bad_arguments_name_the_fix(call: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        call()  # type: ignore[operator]
    assert str(info.value).startswith(message)


def test_a_fault_scope_undoes_clock_faults_even_when_the_test_fails() -> None:
    from faults import FaultScope

    def failing_test(scope: FaultScope) -> None:
        scope.enter(clock_faults.skew(HOUR, target="both"))
        assert time.time() > real_time() + HOUR - 60
        raise RuntimeError("test failed")

    with FaultScope() as scope, pytest.raises(RuntimeError, match="test failed"):
        failing_test(scope)
    assert time.monotonic is aliased_monotonic
    assert not time_machine.escape_hatch.is_travelling()
