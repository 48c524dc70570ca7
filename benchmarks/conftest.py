"""What the benchmark modules share: a private event loop, the async call loop, and the
interleaved timing of a comparison whose ratio carries a goal."""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: Awaited calls per benchmark round of an async benchmark (per call = time / CALLS).
CALLS = 1000


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private event loop, closed after the benchmark."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def run_many(loop: asyncio.AbstractEventLoop) -> Callable[[Callable[[], Any]], Callable[[], None]]:
    """``run_many(make)``: a round of 1,000 ``await make()`` in one running loop."""

    def build(make: Callable[[], Any]) -> Callable[[], None]:
        async def many() -> None:
            for _ in range(CALLS):
                await make()

        return lambda: loop.run_until_complete(many())

    return build


def interleave(benchmark: Any, sides: dict[str, Callable[[], Any]], *, calls: int = 2000,
               rounds: int = 41) -> dict[str, float]:
    """Time every side of a comparison in each round (``calls`` calls each, in an order
    that flips from round to round), so load that comes and goes hits all sides alike.

    Time is this thread's CPU time (``time.thread_time``): on a shared machine a wall-clock
    round also counts the time other processes held the core, which inflates the longer
    side of a comparison more than the shorter one.

    Returns each side's median seconds per call over the rounds and records them in
    ``extra_info`` as ``<side>_s``; the benchmark's own figure is a whole round.
    """
    times: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides.items())
    loop = range(calls)

    def round_() -> None:
        for name, fn in order[::-1] if len(times[order[0][0]]) % 2 else order:
            started = time.thread_time()
            for _ in loop:
                fn()
            times[name].append((time.thread_time() - started) / calls)

    benchmark.pedantic(round_, rounds=rounds, warmup_rounds=1)
    medians = {name: statistics.median(values[-rounds:]) for name, values in times.items()}
    benchmark.extra_info.update({f"{name}_s": value for name, value in medians.items()})
    return medians


@pytest.fixture
def interleaved(benchmark: Any) -> Callable[..., dict[str, float]]:
    """``interleave`` bound to this test's ``benchmark``."""
    return functools.partial(interleave, benchmark)
