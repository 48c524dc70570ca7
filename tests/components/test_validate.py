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


def test_the_public_facade_is_the_same_checks() -> None:
    from pytest_resilience import validate

    assert validate.seconds is _validate.seconds
    with pytest.raises(ValueError) as info:
        validate.seconds(-1, "interval", positive=True)
    assert str(info.value) == ("interval=-1 is not a valid number of seconds. "
                               "Pass a finite number > 0.")


@pytest.mark.parametrize(("value", "kind"), [(None, TypeError), (b"/tmp", TypeError),
                                             (3, TypeError), ("", ValueError)])
def test_path_refuses_what_names_no_path(value: object, kind: type[Exception]) -> None:
    with pytest.raises(kind) as info:
        _validate.path(value, "root")
    assert str(info.value) == (f"root={value!r} is not a path. "
                               "Pass a path: a non-empty str or a pathlib.Path.")


def test_path_gives_a_path() -> None:
    from pathlib import Path

    assert _validate.path("a/b", "root") == Path("a/b")
    assert _validate.path(Path("/x"), "root") == Path("/x")


def test_recording_refuses_what_is_not_a_history() -> None:
    """Regression: ``recording(history=True)`` became the active history, and the next
    ``emit`` anywhere failed with AttributeError."""
    from pytest_resilience import History, recording

    with pytest.raises(TypeError) as info, recording(True):  # type: ignore[arg-type]
        pass
    assert str(info.value) == ("history=True is not a history. Pass a History (the test's "
                               "`history` fixture), or None for the active one.")
    with recording(None) as made:
        assert isinstance(made, History)


_NOT_A_HISTORY = ("history=42 is not a history. Pass a History (the test's `history` "
                  "fixture), or None for the active one.")


def test_a_component_refuses_what_is_not_a_history_when_built() -> None:
    """Regression: ``SLARecorder(history=42)`` was accepted and failed at its first
    fault-marked sample (AttributeError: 'int' object has no attribute ...)."""
    from pytest_resilience.sla import SLARecorder

    with pytest.raises(TypeError) as info:
        SLARecorder(history=42)  # type: ignore[arg-type]
    assert str(info.value) == _NOT_A_HISTORY


def test_a_fault_refuses_what_is_not_a_history_before_it_acts() -> None:
    """Regression: ``memory_pressure(80, history=42)`` patched psutil, then failed at its
    ``fault.armed`` event (AttributeError: no 'clock'); now refused before psutil is
    touched."""
    psutil = pytest.importorskip("psutil")
    from faults.memory import memory_pressure

    before = psutil.PROCFS_PATH
    with pytest.raises(TypeError) as info, memory_pressure(80, history=42):  # type: ignore[arg-type]
        pass
    assert str(info.value) == _NOT_A_HISTORY
    assert before == psutil.PROCFS_PATH  # restored, not left patched


def test_a_checker_refuses_what_is_not_a_history() -> None:
    """Regression: ``check_retry(42)`` raised "'int' object is not iterable", naming no
    argument; a list of non-events raised AttributeError."""
    from pytest_resilience.checks import check_retry

    for value, shown in ((42, "42"), ([1], "[1]"), ("retry", "'retry'")):
        with pytest.raises(TypeError) as info:
            check_retry(value)  # type: ignore[arg-type]
        assert str(info.value) == (
            f"history={shown} is not a history. Pass a History (the test's `history` "
            "fixture) or a list of its Events (history.snapshot()).")


def test_lookups_refuse_what_is_not_a_name() -> None:
    """Regression (found by tests/safety/test_fuzz_public_api.py): ``declared([])`` and
    ``family_named([])`` raised ``unhashable type: 'list'``, ``min_samples(None)`` a
    comparison error; none named its argument."""
    from faults.families import family_named
    from pytest_resilience.kinds import declared
    from pytest_resilience.sla import min_samples

    with pytest.raises(TypeError) as kind:
        declared([])  # type: ignore[arg-type]
    assert str(kind.value) == ("name=[] is not an event kind. "
                               "Pass a kind name such as 'retry.attempt'.")
    assert declared("no.such") is None
    with pytest.raises(TypeError) as family:
        family_named([])  # type: ignore[arg-type]
    assert str(family.value).startswith("name=[] is not a family name. Pass one of [")
    with pytest.raises(TypeError) as quantile:
        min_samples(None)  # type: ignore[arg-type]
    assert str(quantile.value) == ("q=None is not a quantile. "
                                   "Pass 0 <= q < 1 (0.99 for p99).")
    assert min_samples(0.99) == 1000


def test_observability_refusals_survive_hostile_values() -> None:
    """Regression (found by the fuzz): ``EventLogging(logger=x)`` formatted ``x`` with
    ``repr`` (an object whose repr raises escaped as RuntimeError), and
    ``correlation(correlation_id=<deep list>)`` hit RecursionError in ``str()``."""
    from pytest_resilience.observability import EventLogging, correlation

    with pytest.raises(TypeError) as logger:
        EventLogging(logger=_NoRepr())  # type: ignore[arg-type]
    assert str(logger.value).startswith("logger=<_NoRepr instance at 0x")
    assert str(logger.value).endswith("> is not a logger name. Pass e.g. 'myapp.events'.")
    with pytest.raises(TypeError) as ident:
        correlation("op", correlation_id=[[1]])  # type: ignore[arg-type]
    assert str(ident.value) == ("correlation_id=[[1]] is not an id. Pass a str, int or "
                                "UUID (e.g. the request's id), or None.")


def test_an_empty_family_name_is_refused_as_part_of_families() -> None:
    """``family_named`` now checks its name's type; an empty name inside ``families``
    is still refused as ``families=[..., '']``."""
    from faults.families import resolve_families

    with pytest.raises(ValueError) as family:
        resolve_families([""])
    assert str(family.value).startswith("families=[..., ''] names a family that is not "
                                        "registered.")
