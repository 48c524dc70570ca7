"""The event history: every component decision and every fault is one ``Event``.

Components call ``emit(KIND, source, clock, **attrs)`` with a kind declared in
``pytest_resilience.kinds``. An event is built only when somebody listens: a ``History``
made active with ``recording()`` (the ``history`` fixture does this), a history passed
explicitly, or a global listener added with ``add_listener``. With nobody listening,
``emit`` returns after two checks.

A history made with ``clock=`` stamps every event with that clock (the test's), whatever
clock the emitter holds, so one test's events share one time line. It also knows which
faults are active: from a ``fault.armed`` event to the matching ``fault.disarmed``.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from pytest_resilience import _kinds, _validate
from pytest_resilience._clock import Clock, SystemClock
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED

__all__ = [
    "Event",
    "History",
    "Listener",
    "active_history",
    "add_listener",
    "emit",
    "listening",
    "recording",
    "set_strict",
]

Listener = Callable[["Event"], None]

_SYSTEM_CLOCK = SystemClock()
_active: History | None = None
_listeners: tuple[Listener, ...] = ()
_listeners_lock = threading.Lock()
_strict = False


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened: when (on the emitting clock), what, where, and details."""

    seq: int
    time: float
    kind: str
    source: str
    attrs: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins, as written to JSON lines."""
        return {
            "seq": self.seq,
            "time": self.time,
            "kind": self.kind,
            "source": self.source,
            "attrs": dict(self.attrs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Inverse of ``to_dict``; malformed data is one ``ValueError`` naming ``data``."""
        from pytest_resilience import _validate

        with _validate.parsing("data", data, "an event", "data written by Event.to_dict"):
            attrs = data.get("attrs", {})
            if not isinstance(attrs, Mapping):
                raise TypeError("attrs is not a mapping")
            return cls(
                seq=_validate.count(data["seq"], "seq", low=0),
                time=_validate.number(data["time"], "time"),
                kind=_validate.text(data["kind"], "kind"),
                source=_validate.text(data["source"], "source", empty=True),
                attrs=dict(attrs),
            )


class History:
    """An append-only, thread-safe list of events with listeners and JSON-lines export.

    ``clock``: when given, every event is stamped with ``clock.monotonic()`` (the emitter's
    clock is ignored), so all of a test's events share the test's time line.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock
        self._events: list[Event] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._subscribers: tuple[Listener, ...] = ()
        self._active: dict[str, int] = {}
        self._armed = 0

    def append(
        self,
        kind: str,
        source: str,
        *,
        time: float | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> Event:
        """Record an event and tell the subscribers.

        The time is the history's clock if it has one, else ``time``, else the system
        clock's monotonic reading.
        """
        values = dict(attrs or {})
        stamp_clock = self.clock
        if stamp_clock is not None:
            now = stamp_clock.monotonic()
        else:
            now = _SYSTEM_CLOCK.monotonic() if time is None else time
        kind = str(kind)  # a declared Kind is a str subclass: store the plain name
        with self._lock:
            event = Event(next(self._seq), now, kind, source, values)
            self._events.append(event)
            if kind == FAULT_ARMED:
                self._active[source] = self._active.get(source, 0) + 1
                self._armed += 1
            elif kind == FAULT_DISARMED and self._active.get(source):
                self._active[source] -= 1
            subscribers = self._subscribers
        for fn in subscribers:
            fn(event)
        return event

    def faults_active(self) -> list[str]:
        """Sources of the faults active now (armed and not yet disarmed), sorted."""
        with self._lock:
            return sorted(s for s, n in self._active.items() if n > 0)

    def armed_count(self) -> int:
        """How many ``fault.armed`` events were recorded so far (a change marker)."""
        return self._armed

    def subscribe(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn`` with every later event; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers = (*self._subscribers, fn)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not fn)

        return unsubscribe

    def select(self, kind: str | None = None, source: str | None = None) -> list[Event]:
        """Events matching ``kind`` (exact, or a prefix ending in ``.``) and ``source``."""
        return [
            e
            for e in self.snapshot()
            if (kind is None or e.kind == kind or (kind.endswith(".") and e.kind.startswith(kind)))
            and (source is None or e.source == source)
        ]

    def kinds(self) -> list[str]:
        """The kind of every event, in order: handy in assertions."""
        return [e.kind for e in self.snapshot()]

    def snapshot(self) -> tuple[Event, ...]:
        """A consistent copy of the events so far."""
        with self._lock:
            return tuple(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.snapshot())

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Event, ...]: ...
    def __getitem__(self, index: int | slice) -> Event | tuple[Event, ...]:
        return self.snapshot()[index]

    def to_jsonl(self) -> str:
        """One JSON object per line; non-JSON attribute values are written as ``repr``."""
        return "".join(json.dumps(e.to_dict(), default=repr) + "\n" for e in self.snapshot())

    def write_jsonl(self, path: str | Path) -> Path:
        """Write ``to_jsonl()`` to ``path`` and return it."""
        target = Path(path)
        target.write_text(self.to_jsonl(), encoding="utf-8")
        return target

    @classmethod
    def from_jsonl(cls, text: str) -> History:
        """Rebuild a history from ``to_jsonl()`` output (sequence numbers are kept)."""
        from pytest_resilience import _validate

        history = cls()
        with _validate.parsing("text", text, "a history in JSON lines",
                               "the text written by History.to_jsonl"):
            if not isinstance(text, str):
                raise TypeError(f"{type(text).__name__} is not text")
            events = [Event.from_dict(json.loads(line)) for line in text.splitlines() if line]
        history._events.extend(events)
        history._seq = itertools.count(events[-1].seq + 1 if events else 0)
        return history

    def __repr__(self) -> str:
        return f"<History {len(self)} events>"


def set_strict(enabled: bool) -> None:
    """In strict mode ``emit`` refuses an undeclared kind or undeclared attributes
    (``UndeclaredEvent``); this project's test suite runs strict. Histories built by hand
    with ``History.append`` are not checked."""
    global _strict  # noqa: PLW0603 - a process-wide switch for test suites
    _strict = bool(enabled)


def listening() -> bool:
    """Whether an emitted event would be recorded or heard (hot paths skip work if not)."""
    return _active is not None or _listeners != ()


def active_history() -> History | None:
    """The history ``emit`` writes to when none is passed, if any."""
    return _active


@contextmanager
def recording(history: History | None = None) -> Iterator[History]:
    """Make ``history`` (a new one by default) the active history for the block."""
    global _active  # noqa: PLW0603 - the process-wide sink, restored on exit
    checked = _validate.history(history)
    target = History() if checked is None else checked
    previous, _active = _active, target
    try:
        yield target
    finally:
        _active = previous


def add_listener(fn: Listener) -> Callable[[], None]:
    """Call ``fn`` with every event emitted anywhere; returns a function that removes it."""
    global _listeners  # noqa: PLW0603
    with _listeners_lock:
        _listeners = (*_listeners, fn)

    def remove() -> None:
        global _listeners  # noqa: PLW0603
        with _listeners_lock:
            _listeners = tuple(f for f in _listeners if f is not fn)

    return remove


def emit(
    kind: str,
    source: str,
    clock: Clock | None = None,
    *,
    history: History | None = None,
    **attrs: Any,
) -> None:
    """Record an event on ``history`` (or the active one) and tell global listeners.

    ``kind`` is a constant of ``pytest_resilience.kinds``. The time is the history's own
    clock when it has one, else ``clock.monotonic()`` (the system clock if none is given).
    Costs two checks when nobody listens.
    """
    target = history if history is not None else _active
    if target is None and not _listeners:
        return
    now = None if target is not None and target.clock is not None else (
        (clock or _SYSTEM_CLOCK).monotonic())
    if _strict:
        _kinds.validate(kind, attrs)
    if target is not None:
        event = target.append(kind, source, time=now, attrs=attrs)
    else:
        event = Event(-1, now if now is not None else 0.0, kind, source, attrs)
    for fn in _listeners:
        fn(event)
