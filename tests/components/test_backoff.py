"""Backoff schedules and jitter: bounds hold for any input, spread survives the cap."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience._backoff import Backoff, Jittered

bases = st.floats(min_value=0.0, max_value=5.0)
caps = st.floats(min_value=5.0, max_value=100.0)


@settings(max_examples=60)
@given(base=bases, factor=st.floats(1.0, 4.0), cap=caps, retry=st.integers(1, 3000),
       jitter=st.sampled_from(["full", "equal", "none"]), seed=st.integers(0, 2**32))
def test_jittered_delay_stays_within_bounds(  # noqa: PLR0917
    base: float, factor: float, cap: float, retry: int, jitter: str, seed: int
) -> None:
    backoff = Backoff.exponential(base=base, factor=factor, max=cap)
    capped = backoff.delay(retry)
    assert base <= capped <= cap or capped == cap
    delay = Jittered(backoff, jitter, random.Random(seed)).next(retry)
    low = {"full": 0.0, "equal": capped / 2, "none": capped}[jitter]
    assert low <= delay <= capped


@settings(max_examples=40)
@given(base=st.floats(0.01, 1.0), cap=caps, seed=st.integers(0, 2**32))
def test_decorrelated_delays_stay_between_base_and_cap(base: float, cap: float, seed: int) -> None:
    source = Jittered(Backoff.exponential(base=base, max=cap), "decorrelated", random.Random(seed))
    delays = [source.next(n) for n in range(1, 50)]
    assert all(base <= d <= cap for d in delays)


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated"])
def test_jitter_keeps_spread_at_the_cap(jitter: str) -> None:
    backoff = Backoff.exponential(base=0.1, factor=2.0, max=5.0)
    rng = random.Random(7)
    late = [Jittered(backoff, jitter, rng).next(20) for _ in range(500)]
    if jitter == "decorrelated":
        late = []
        for _ in range(300):
            source = Jittered(backoff, jitter, rng)
            late.append([source.next(n) for n in range(1, 21)][-1])
    assert statistics.pstdev(late) > 0.5  # tenacity/stamina: exactly 0 at the cap
    assert max(late) <= 5.0


def test_same_seed_same_schedule() -> None:
    backoff = Backoff.exponential()
    first = [Jittered(backoff, "full", random.Random(3)).next(n) for n in range(1, 8)]
    again = [Jittered(backoff, "full", random.Random(3)).next(n) for n in range(1, 8)]
    assert first == again


def test_schedules() -> None:
    assert [Backoff.exponential(base=1, factor=3, max=20).delay(n) for n in (1, 2, 3, 4)] == [
        1, 3, 9, 20]
    assert [Backoff.linear(base=1, step=2, max=6).delay(n) for n in (1, 2, 3, 4)] == [1, 3, 5, 6]
    assert Backoff.constant(0.25).delay(99) == 0.25
    assert Backoff.exponential(base=1, max=10).delay(10**6) == 10


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Backoff.exponential(base=-1), "base=-1 is not a valid delay. Pass a finite"),
        (lambda: Backoff.exponential(factor=0.5), "factor=0.5 is not a valid growth factor."),
        (lambda: Backoff.linear(base=5, max=1), "max=1.0 is below base=5.0. Pass max >= base."),
        (lambda: Backoff.constant(float("inf")), "delay=inf is not a valid delay."),
    ],
)
def test_bad_backoff_raises(make: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        make()  # type: ignore[operator]
    assert str(info.value).startswith(message)
