"""Argument checks shared by every component constructor: one rule, one message shape.

Numbers are ``int`` or ``float`` (any ``numbers.Real``, e.g. numpy scalars) but never
``bool`` or ``str``, always finite, and inside the stated range; counts are integers
(``operator.index``). Every refusal is a ``TypeError`` (wrong kind of value) or a
``ValueError`` (right kind, out of range) that reads
``"<name>=<value> is not <what>. Pass <what is accepted>."`` with a short, safe repr of
the value (a 10,000-digit int or a self-referencing list cannot break the message).
"""

from __future__ import annotations

import math
import numbers
import operator
import reprlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_resilience._errors import ResilienceError

if TYPE_CHECKING:
    from pytest_resilience._clock import Clock

__all__ = [
    "callable_or_none",
    "callables",
    "check",
    "clock",
    "count",
    "exception_types",
    "fraction",
    "number",
    "one_of",
    "parsing",
    "seconds",
    "seed",
    "show",
    "text",
]

T = TypeVar("T")

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlong = 40


def show(value: object) -> str:
    """A short repr of ``value`` for an error message; never raises."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<int of {value.bit_length()} bits>"
    try:
        return _repr.repr(value)
    except Exception:  # a broken __repr__ must not hide the real problem
        return f"<{type(value).__name__} object>"


def _refuse(kind: type[Exception], name: str, value: object, what: str,
            accepted: str, *, detail: str = "") -> Exception:
    exc = kind(f"{name}={show(value)} is not {what}{detail.rstrip('.')}. Pass {accepted}.")
    exc.argument = name  # type: ignore[attr-defined]  # read by ``parsing``
    return exc


def _range_text(low: float | None, high: float | None, low_open: bool,
                high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def number(value: object, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, what: str = "a valid number",
           accepted: str | None = None) -> float:
    """``value`` as a finite float in the range, else ``TypeError``/``ValueError``."""
    bounds = _range_text(low, high, low_open, high_open)
    accepted = accepted or ("a finite number" + (f" {bounds}" if bounds else ""))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _refuse(TypeError, name, value, what, accepted)
    try:
        result = float(value)
    except (OverflowError, ValueError, TypeError):
        raise _refuse(ValueError, name, value, what, accepted) from None
    if not math.isfinite(result) or (low is not None and (
            result < low or (low_open and result == low))) or (high is not None and (
            result > high or (high_open and result == high))):
        raise _refuse(ValueError, name, value, what, accepted)
    return result


def seconds(value: object, name: str, *, positive: bool = False,
            what: str = "a valid number of seconds", accepted: str | None = None) -> float:
    """A finite duration in seconds: ``>= 0``, or ``> 0`` when ``positive``."""
    return number(value, name, low=0.0, low_open=positive, what=what, accepted=accepted)


def fraction(value: object, name: str, *, low_open: bool = False, high_open: bool = False,
             what: str = "a fraction", accepted: str | None = None) -> float:
    """A number in ``[0, 1]`` (either end open when asked)."""
    return number(value, name, low=0.0, high=1.0, low_open=low_open, high_open=high_open,
                  what=what, accepted=accepted)


def count(value: object, name: str, *, low: int = 1, high: int | None = None,
          what: str = "a valid count", accepted: str | None = None) -> int:
    """An integer (not a bool, not a float) in ``[low, high]``."""
    accepted = accepted or (f"an integer >= {low}" + (f" and <= {high}" if high is not None
                                                       else ""))
    if isinstance(value, bool):
        raise _refuse(TypeError, name, value, what, accepted)
    try:
        result = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise _refuse(TypeError, name, value, what, accepted) from None
    if result < low or (high is not None and result > high):
        raise _refuse(ValueError, name, value, what, accepted)
    return result


def seed(value: object, name: str = "seed") -> int | None:
    """A random seed: an integer (any size) or ``None``."""
    if value is None:
        return None
    return count(value, name, low=-(2**1023), what="a seed",
                 accepted="an integer, or None for a fresh random seed")


def text(value: object, name: str, *, empty: bool = False, what: str = "a name",
         accepted: str | None = None) -> str:
    """A ``str`` (non-empty unless ``empty``)."""
    accepted = accepted or ("a string" if empty else "a non-empty string")
    if not isinstance(value, str):
        raise _refuse(TypeError, name, value, what, accepted)
    if not value and not empty:
        raise _refuse(ValueError, name, value, what, accepted)
    return value


def callable_or_none(value: T | None, name: str, *, what: str = "callable",
                     accepted: str = "a function, or None") -> T | None:
    """``value`` when it is callable or ``None``, else ``TypeError``."""
    if value is not None and not callable(value):
        raise _refuse(TypeError, name, value, what, accepted)
    return value


def callables(value: object, name: str, *,
              accepted: str = "an iterable of functions") -> tuple[Callable[..., Any], ...]:
    """Every item of the iterable ``value`` when each is callable, as a tuple."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _refuse(TypeError, name, value, "a collection of functions", accepted)
    items = tuple(value)
    if not all(callable(item) for item in items):
        raise _refuse(TypeError, name, value, "a collection of functions", accepted)
    return items


def exception_types(value: object, name: str, *, empty: bool = False,
                    accepted: str | None = None) -> tuple[type[BaseException], ...]:
    """An exception class or a tuple of them, as a tuple (empty only when allowed)."""
    accepted = accepted or ("an exception class or a tuple of them, e.g. "
                            "(ConnectionError, TimeoutError)")
    items = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(t, type) and issubclass(t, BaseException) for t in items):
        raise _refuse(TypeError, name, value, "an exception type", accepted)
    if not items and not empty:
        raise _refuse(ValueError, name, value, "an exception type", accepted)
    return items


_CLOCK_METHODS = ("monotonic", "time", "sleep", "asleep")


def clock(value: object, name: str = "clock") -> Clock:
    """``value`` when it has the Clock methods, ``SystemClock()`` for ``None``."""
    if value is None:
        from pytest_resilience._clock import SystemClock  # _clock imports this module

        return SystemClock()
    if isinstance(value, type) or not all(
            callable(getattr(value, m, None)) for m in _CLOCK_METHODS):
        raise _refuse(TypeError, name, value, "a clock",
                      "an object with monotonic(), time(), sleep() and asleep() (a "
                      "VirtualClock or SystemClock instance), or None")
    return value  # type: ignore[return-value]


_STORAGE_METHODS = ("bucket_store", "breaker_store", "budget_store", "dead_letter_store",
                    "queue_store")


def storage(value: T, name: str = "storage") -> T:
    """``value`` when it is ``None`` or a storage (``MemoryStorage``, ``RedisStorage``)."""
    if value is not None and (isinstance(value, type) or not all(
            callable(getattr(value, m, None)) for m in _STORAGE_METHODS)):
        raise _refuse(TypeError, name, value, "a storage",
                      "a MemoryStorage or RedisStorage instance, or None (in-process state)")
    return value


def one_of(value: object, name: str, choices: tuple[T, ...], *, what: str) -> T:
    """``value`` when it is one of ``choices`` (compared by equality, hashable or not)."""
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return choice
    raise _refuse(ValueError, name, value, what,
                  "one of " + ", ".join(str(c) for c in choices))


def check(ok: bool, name: str, value: object, *, what: str, accepted: str,
          kind: type[Exception] = ValueError) -> None:
    """Raise the standard message when a cross-argument rule ``ok`` does not hold."""
    if not ok:
        raise _refuse(kind, name, value, what, accepted)


@contextmanager
def parsing(name: str, value: object, what: str, accepted: str) -> Iterator[None]:
    """Turn any failure while reading ``value`` into one ``ValueError`` naming ``name``.

    For ``from_dict`` / ``from_json`` / ``parse``: a missing key, a wrong type deep in
    the data, a huge number or absurd nesting all become ``ValueError("<name>=... is not
    <what>: <problem>. Pass <accepted>.")``; errors already naming an argument (raised by
    this module) and ``ResilienceError``s pass through.
    """
    try:
        yield
    except ResilienceError:
        raise
    except (ValueError, TypeError) as exc:
        if getattr(exc, "argument", None):
            raise
        raise _refuse(ValueError, name, value, what, accepted, detail=f": {exc}") from None
    except KeyError as exc:
        raise _refuse(ValueError, name, value, what, accepted,
                      detail=f": missing key {exc.args[0]!r}" if exc.args else "") from None
    except (AttributeError, IndexError, LookupError, OverflowError, RecursionError,
            AssertionError) as exc:
        raise _refuse(ValueError, name, value, what, accepted,
                      detail=f": {type(exc).__name__}: {exc}") from None
