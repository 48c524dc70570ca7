"""VirtualClock and SystemClock: time moves only when asked, never backwards."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience._clock import DEFAULT_WALL_START, Clock, SystemClock, VirtualClock


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(VirtualClock(), Clock)


def test_sleep_advances_both_clocks_at_once() -> None:
    clock = VirtualClock(start=10.0, wall_start=1000.0)
    clock.sleep(2.5)
    assert clock.monotonic() == 12.5
    assert clock.time() == 1002.5


def test_default_wall_start_is_fixed_for_replay() -> None:
    assert VirtualClock().time() == DEFAULT_WALL_START == 1_704_067_200.0


def test_skew_moves_wall_time_only() -> None:
    clock = VirtualClock()
    clock.skew(-3600)
    assert clock.monotonic() == 0.0
    assert clock.time() == DEFAULT_WALL_START - 3600
    clock.advance(1)
    assert clock.time() == DEFAULT_WALL_START - 3599


def test_drift_changes_the_wall_rate_from_now_on() -> None:
    clock = VirtualClock(wall_start=0.0)
    clock.advance(10)
    clock.drift(1.5)
    clock.advance(10)
    assert clock.monotonic() == 20.0
    assert clock.time() == 25.0
    assert clock.rate == 1.5


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_sleeps_raise_value_error_naming_the_fix(bad: float) -> None:
    clock = VirtualClock()
    with pytest.raises(ValueError, match=r"is not a valid duration. Pass a finite number >= 0."):
        clock.sleep(bad)
    with pytest.raises(ValueError, match="not a valid duration"):
        clock.advance(bad)
    with pytest.raises(ValueError, match="not a valid duration"):
        asyncio.run(clock.asleep(bad))
    assert clock.monotonic() == 0.0


def test_bad_drift_and_skew_are_refused() -> None:
    clock = VirtualClock()
    with pytest.raises(ValueError) as info:
        clock.drift(0)
    assert str(info.value) == (
        "rate=0 is not a valid drift rate. Pass a finite number > 0 (1.0 = no drift); "
        "use skew() to step wall time backwards."
    )
    with pytest.raises(ValueError, match="seconds=nan is not a finite number"):
        clock.skew(math.nan)
    with pytest.raises(TypeError, match="seconds='30' is not a finite number"):
        clock.skew("30")  # type: ignore[arg-type]


def test_zero_sleep_does_not_move_time() -> None:
    clock = VirtualClock()
    clock.sleep(0)
    asyncio.run(clock.asleep(0))
    assert clock.monotonic() == 0.0


def test_three_tasks_wake_in_deadline_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[int, float]] = []

    async def sleeper(seconds: int) -> None:
        await clock.asleep(seconds)
        woke.append((seconds, clock.monotonic()))

    async def main() -> None:
        await asyncio.gather(sleeper(1), sleeper(5), sleeper(3))

    asyncio.run(main())
    assert woke == [(1, 1.0), (3, 3.0), (5, 5.0)]
    assert clock.pending_sleepers == 0


def test_sequential_async_sleeps_accumulate() -> None:
    clock = VirtualClock()

    async def main() -> float:
        for _ in range(4):
            await clock.asleep(0.25)
        return clock.monotonic()

    assert asyncio.run(main()) == 1.0


def test_cancelled_sleeper_does_not_move_time() -> None:
    clock = VirtualClock()

    async def main() -> None:
        long = asyncio.ensure_future(clock.asleep(100))
        await asyncio.sleep(0)
        long.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long
        await clock.asleep(1)

    asyncio.run(main())
    assert clock.monotonic() == 1.0


def test_asyncio_wait_for_times_out_on_virtual_time() -> None:
    clock = VirtualClock()

    async def main() -> None:
        async def slow() -> None:
            await clock.asleep(60)

        task = asyncio.ensure_future(slow())
        await clock.asleep(5)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert clock.monotonic() == 5.0


def test_advance_from_another_thread_wakes_due_sleepers() -> None:
    clock = VirtualClock()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        sleeper = asyncio.ensure_future(clock.asleep(10))
        await asyncio.sleep(0)
        await loop.run_in_executor(None, clock.advance, 10)
        await sleeper
        return clock.monotonic()

    assert asyncio.run(main()) >= 10.0


def test_threads_sleeping_concurrently_never_see_time_go_back() -> None:
    clock = VirtualClock()
    seen: list[list[float]] = [[] for _ in range(8)]

    def worker(i: int) -> None:
        for _ in range(200):
            clock.sleep(0.001)
            seen[i].append(clock.monotonic())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(not t.is_alive() for t in threads)
    assert all(s == sorted(s) for s in seen)
    assert clock.monotonic() == pytest.approx(8 * 200 * 0.001)


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.floats(-5, 50) | st.just(math.nan)),
        st.tuples(st.just("sleep"), st.floats(-5, 50) | st.just(math.inf)),
        st.tuples(st.just("skew"), st.floats(-1e6, 1e6)),
        st.tuples(st.just("drift"), st.floats(-2, 3)),
    ),
    max_size=40,
)


@given(_ops)
def test_monotonic_never_decreases_whatever_is_asked(ops: list[tuple[str, float]]) -> None:
    clock = VirtualClock()
    last = clock.monotonic()
    for name, value in ops:
        with contextlib.suppress(ValueError):
            getattr(clock, name)(value)
        now = clock.monotonic()
        assert now >= last
        last = now


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.001, max_value=1000), min_size=1, max_size=12))
def test_any_interleaving_of_sleeps_wakes_in_deadline_order(delays: list[float]) -> None:
    clock = VirtualClock()
    woke: list[tuple[float, float]] = []

    async def sleeper(seconds: float) -> None:
        await clock.asleep(seconds)
        woke.append((seconds, clock.monotonic()))

    async def main() -> None:
        await asyncio.gather(*(sleeper(d) for d in delays))

    asyncio.run(main())
    assert [d for d, _ in woke] == sorted(delays)
    for seconds, at in woke:
        assert at == pytest.approx(seconds)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(min_value=0.01, max_value=10), min_size=1, max_size=4),
                min_size=1, max_size=5))
def test_chains_of_sleeps_wake_at_their_cumulative_deadlines(chains: list[list[float]]) -> None:
    clock = VirtualClock()
    wakes: list[float] = []

    async def chain(steps: list[float]) -> None:
        total = 0.0
        for step in steps:
            total += step
            await clock.asleep(step)
            assert clock.monotonic() == pytest.approx(total)
            wakes.append(clock.monotonic())

    async def main() -> None:
        await asyncio.gather(*(chain(c) for c in chains))

    asyncio.run(main())
    assert wakes == sorted(wakes)
    assert clock.monotonic() == pytest.approx(max(sum(c) for c in chains))


def test_system_clock_reads_the_real_clocks() -> None:
    clock = SystemClock()
    a = clock.monotonic()
    assert clock.monotonic() >= a
    assert abs(clock.time() - __import__("time").time()) < 5
    clock.sleep(0)  # zero delay: no system call
    with pytest.raises(ValueError, match="not a valid duration"):
        clock.sleep(-1)


# -- the alarm (a deadline hook: the chaos runner's scheduled faults use it) ------------
def test_a_step_stops_at_the_alarm_and_goes_on_to_its_end() -> None:
    clock = VirtualClock()
    seen: list[float] = []

    def ring() -> None:
        seen.append(clock.monotonic())
        clock.set_alarm(3.0 if len(seen) == 1 else math.inf, ring if len(seen) == 1 else None)

    clock.set_alarm(1.0, ring)
    clock.sleep(5.0)
    assert seen == [1.0, 3.0]  # each at its own time, inside one sleep
    assert clock.monotonic() == 5.0


def test_an_alarm_the_callback_ignores_rings_on_each_read_and_stops_no_step() -> None:
    clock = VirtualClock()
    calls = []
    clock.set_alarm(1.0, lambda: calls.append(clock.monotonic()))
    clock.sleep(2.0)
    assert clock.monotonic() == 2.0
    clock.time()
    assert len(calls) >= 3  # at the step's stop, its end, and each read
    clock.set_alarm(0.0, None)
    clock.sleep(1.0)
    n = len(calls)
    clock.monotonic()
    assert len(calls) == n  # cleared


def test_a_callback_moving_the_clock_does_not_lengthen_the_step() -> None:
    clock = VirtualClock()

    def jump() -> None:
        clock.set_alarm(0.0, None)
        clock.advance(10.0)  # time passed at once, as a clock jump does

    clock.set_alarm(1.0, jump)
    clock.sleep(2.0)
    assert clock.monotonic() == 11.0  # the sleep aimed for t=2, already behind


def test_async_sleepers_stop_at_the_alarm() -> None:
    clock = VirtualClock()
    seen: list[float] = []

    def ring() -> None:
        seen.append(clock.monotonic())
        clock.set_alarm(0.0, None)

    async def main() -> None:
        clock.set_alarm(2.5, ring)
        await clock.asleep(4.0)

    asyncio.run(main())
    assert seen == [2.5]
    assert clock.monotonic() == 4.0


def test_a_nan_alarm_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        VirtualClock().set_alarm(math.nan, None)
    assert str(info.value) == "at=nan is not a time. Pass monotonic seconds."
