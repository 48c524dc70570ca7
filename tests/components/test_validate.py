"""The shared argument checks: one rule for numbers, one message shape, a safe repr."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest

from pytest_resilience import (
    CircuitBreaker,
    FairSemaphore,
    ResourcePool,
    Retry,
    TimeoutLock,
    VirtualClock,
    _validate,
)
from pytest_resilience.memory import MemoryPressureMonitor, ModelCache


class _NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_show_never_raises_and_stays_short() -> None:
    assert _validate.show(10**5000) == "<int of 16610 bits>"
    assert _validate.show(_NoRepr()).startswith("<_NoRepr instance at 0x")
    assert len(_validate.show("x" * 10_000)) < 80
    nested: list[object] = []
    nested.append(nested)
    assert _validate.show(nested) == "[[[[[[[...]]]]]]]"


@pytest.mark.parametrize("value", [True, "30", None, b"1", 1j, Decimal("1"), [1]])
def test_numbers_refuse_other_kinds_with_a_type_error(value: object) -> None:
    with pytest.raises(TypeError) as info:
        _validate.seconds(value, "timeout")
    assert str(info.value).startswith(f"timeout={_validate.show(value)} is not a valid number "
                                      "of seconds. Pass a finite number >= 0")


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, 10**400])
def test_numbers_out_of_range_are_value_errors(value: object) -> None:
    with pytest.raises(ValueError, match=r"^timeout=.* is not a valid number of seconds\."):
        _validate.seconds(value, "timeout")


def test_reals_and_integer_likes_are_accepted() -> None:
    assert _validate.seconds(Fraction(1, 2), "t") == 0.5
    assert _validate.count(3, "n") == 3
    with pytest.raises(TypeError, match=r"^n=3\.0 is not a valid count\."):
        _validate.count(3.0, "n")


@pytest.mark.parametrize("build", [
    lambda: MemoryPressureMonitor(cooldown="30"),  # type: ignore[arg-type]
    lambda: CircuitBreaker(recovery_timeout=True),
    lambda: TimeoutLock(timeout="30"),  # type: ignore[arg-type]
    lambda: FairSemaphore(timeout=True),
])
def test_the_components_that_disagreed_now_refuse_alike(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match=r"^(cooldown|recovery_timeout|timeout)=(True|'30') "
                                        r"is not a valid"):
        build()


@pytest.mark.parametrize(("build", "message"), [
    (lambda: CircuitBreaker(expected=42),  # type: ignore[arg-type]
     "expected=42 is not an exception type. Pass an exception class or a tuple of them, "
     "e.g. (ConnectionError, TimeoutError)."),
    (lambda: ResourcePool(object, size=1, discard_on=42),  # type: ignore[arg-type]
     "discard_on=42 is not an exception type. Pass an exception class or a tuple of them, "
     "e.g. (ConnectionError, TimeoutError)."),
    (lambda: Retry(on_retry=5),  # type: ignore[arg-type]
     "on_retry=5 is not callable. Pass a function of one RetryState, or None."),
    (lambda: Retry(budget=5),  # type: ignore[arg-type]
     "budget=5 is not a RetryBudget. Pass RetryBudget(ratio=..., window=...), or None."),
    (lambda: ModelCache(clock="virtual"),  # type: ignore[arg-type]
     "clock='virtual' is not a clock. Pass an object with monotonic(), time(), sleep() and "
     "asleep() (a VirtualClock or SystemClock instance), or None."),
    (lambda: Retry(attempts=2**70, clock=VirtualClock(), budget=None,
                   retry_on=(ValueError,), on_retry=None, seed=1.5),  # type: ignore[arg-type]
     "seed=1.5 is not a seed. Pass an integer, or None for a fresh random seed."),
])
def test_arguments_that_used_to_fail_later_are_refused_at_construction(build,  # type: ignore[no-untyped-def]
                                                                       message: str) -> None:
    with pytest.raises(TypeError) as info:
        build()
    assert str(info.value) == message
