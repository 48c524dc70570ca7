"""What every observer shares: where its events go, the watched call in progress, and
short summaries of arguments and values.

An observer writes to the history passed as ``history=``, else to the active one at the
time of each event; its time comes from ``clock=``, else that history's clock, else the
clock of the innermost ``watch_sleeps`` block, else the system clock. So observers
entered together inside ``watch_sleeps(clock)`` share the test's virtual time line.
"""

from __future__ import annotations

import contextvars
import itertools
import reprlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pytest_resilience import _validate
from pytest_resilience._clock import Clock, SystemClock
from pytest_resilience._events import History, active_history, emit

__all__ = [
    "Sink",
    "current_call",
    "enter_call",
    "leave_call",
    "method_names",
    "next_call_id",
    "short",
    "sleeping_clock",
    "source_name",
    "summarise_args",
    "watching_clock",
]

_SYSTEM = SystemClock()
_CALL: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "pytest_resilience_watched_call", default=None)
_ids = itertools.count(1)
_ids_lock = threading.Lock()
_sleep_clocks: list[Clock] = []
_repr = reprlib.Repr()
_repr.maxstring = 40
_repr.maxother = 40
_repr.maxlevel = 2
_LIMIT = 80


def next_call_id() -> int:
    """A process-wide unique id for a watched call."""
    with _ids_lock:
        return next(_ids)


def current_call() -> int | None:
    """The id of the innermost watched call running in this context, if any."""
    return _CALL.get()


def enter_call(call: int) -> contextvars.Token[int | None]:
    """Make ``call`` the current watched call (this thread or task) until ``leave_call``."""
    return _CALL.set(call)


def leave_call(token: contextvars.Token[int | None]) -> None:
    """Undo ``enter_call``."""
    _CALL.reset(token)


def sleeping_clock() -> Clock | None:
    """The clock of the innermost ``watch_sleeps`` block, if one is open."""
    return _sleep_clocks[-1] if _sleep_clocks else None


@contextmanager
def watching_clock(clock: Clock) -> Iterator[None]:
    """Register ``clock`` as the innermost ``watch_sleeps`` clock for the block."""
    _sleep_clocks.append(clock)
    try:
        yield
    finally:
        _sleep_clocks.remove(clock)


class Sink:
    """Where an observer's events go and which clock times them (see the module doc)."""

    __slots__ = ("_clock", "_history")

    def __init__(self, clock: Clock | None, history: History | None) -> None:
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock={_validate.show(clock)} is not a Clock. Pass the test's "
                            "clock (a VirtualClock) or leave it out to use the history's.")
        self._clock = clock
        self._history = _validate.history(history)

    def history(self) -> History | None:
        """The explicit history, else the active one."""
        return self._history if self._history is not None else active_history()

    def target(self) -> tuple[History | None, Clock]:
        """Where events go now, and the clock that stamps them (see the module doc)."""
        history = self._history if self._history is not None else active_history()
        if history is not None and history.clock is not None:
            return history, history.clock
        return history, self._clock or sleeping_clock() or _SYSTEM

    def clock(self) -> Clock:
        """The clock that stamps events (see the module doc)."""
        return self.target()[1]

    def now(self) -> float:
        """The time an event emitted now is stamped with."""
        return self.target()[1].monotonic()

    def emit(self, kind: str, source: str, **attrs: Any) -> None:
        """Write one event."""
        history, clock = self.target()
        emit(kind, source, clock, history=history, **attrs)


def method_names(value: object, name: str, *, accepted: str) -> tuple[str, ...]:
    """A method name or a collection of them, as a tuple of non-empty strings."""
    if isinstance(value, str):
        items: tuple[object, ...] = (value,)
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = tuple(value)
    else:
        items = ()
    _validate.check(bool(items) and all(isinstance(i, str) and i for i in items), name,
                    value, what="a method name", accepted=accepted, kind=TypeError)
    return tuple(str(i) for i in items)


def source_name(value: object, name: str = "name") -> str | None:
    """``None``, or the events' source: a non-empty string."""
    return None if value is None else _validate.text(value, name, what="a source name",
                                                      accepted="a non-empty string, or None")


def short(value: object, limit: int = _LIMIT) -> str:
    """A ``repr`` of ``value`` cut to ``limit`` characters (never raises)."""
    try:
        text = _repr.repr(value)
    except Exception:  # a broken __repr__ in user code must not break the call
        text = f"<{type(value).__qualname__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def summarise_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """``a, b, key=c`` in at most 80 characters."""
    parts = [short(a, 40) for a in args] + [f"{k}={short(v, 40)}" for k, v in kwargs.items()]
    text = ", ".join(parts)
    return text if len(text) <= _LIMIT else text[:_LIMIT - 3] + "..."
