"""A hang is a failure, fast and explained: real-time limits on the main thread, and what
was going on when one ran out.

``WATCHDOG.limit(seconds, expired)`` bounds a block: when it has run that long (real
time), ``expired(frame)`` is called in the main thread by ``SIGALRM`` with the frame that
was running, and what it raises interrupts the block, even one blocked in a socket read or
a lock (the interpreter retries neither once a signal handler raised). Limits nest: one
``ITIMER_REAL`` timer serves them all, armed for the earliest. A limit whose callback's
exception was swallowed fires again every ``REFIRE`` seconds until its block ends (no
timer runs while a callback writes its report). Off
the main thread, or when another ``ITIMER_REAL`` timer is running, a limit does nothing.

``explain(...)`` writes the report: the faults active at that moment (from the test's
history: ``fault.armed`` to ``fault.disarmed``, and a proxy's toxics from ``added`` to
``removed``, each with the time it became active, and how long before the hang when the
history has a clock of its own), the stack of the blocked thread, the tasks of an event
loop running on it, and where the other threads were.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from pytest_resilience._clock import SystemClock
from pytest_resilience._errors import ResilienceError
from pytest_resilience._events import Event, History
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED, PROXY_TOXIC

__all__ = ["REFIRE", "WATCHDOG", "ActiveFault", "HangDetected", "Watchdog", "active_faults",
           "explain"]

#: Seconds between two firings of a limit whose first exception was swallowed.
REFIRE = 1.0
_CLOCK = SystemClock()
_HIDDEN = ("/_pytest/", "/pluggy/", "/pytest_resilience/_plugin/",
           "/pytest_resilience/chaos/")


class HangDetected(ResilienceError):
    """A block ran past its real-time limit; the message says what it was blocked on."""


@dataclass
class _Limit:
    deadline: float
    expired: Callable[[FrameType | None], None]


class Watchdog:
    """Nested real-time limits on the main thread, served by one ``SIGALRM`` timer."""

    def __init__(self) -> None:
        self._limits: list[_Limit] = []
        self._previous: Any = None

    @contextmanager
    def limit(self, seconds: float,
              expired: Callable[[FrameType | None], None]) -> Iterator[bool]:
        """Bound the block to ``seconds``; yields whether the limit is enforced."""
        if not self._available():
            yield False
            return
        entry = _Limit(_CLOCK.monotonic() + float(seconds), expired)
        if not self._limits:
            self._previous = signal.signal(signal.SIGALRM, self._fire)
        self._limits.append(entry)
        try:
            self._arm()
            yield True
        finally:
            self._limits.remove(entry)
            if self._limits:
                self._arm()
            else:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, self._previous)
                self._previous = None

    def _available(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False
        if self._limits:
            return True
        return signal.getitimer(signal.ITIMER_REAL)[0] == 0  # nobody else's timer

    def _arm(self) -> None:
        earliest = min(limit.deadline for limit in self._limits)
        signal.setitimer(signal.ITIMER_REAL, max(1e-4, earliest - _CLOCK.monotonic()))

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        now = _CLOCK.monotonic()
        due = [limit for limit in self._limits if limit.deadline <= now + 1e-4]
        if not due:
            self._arm()
            return
        limit = min(due, key=lambda entry: entry.deadline)
        try:
            limit.expired(frame)  # no timer runs meanwhile: the report is not interrupted
        finally:
            limit.deadline = _CLOCK.monotonic() + REFIRE
            self._arm()


#: The process's watchdog.
WATCHDOG = Watchdog()


@dataclass(frozen=True)
class ActiveFault:
    """A fault active at some moment: its source, family, what it does, since when."""

    source: str
    family: str
    what: str
    since: float
    fired: int


def _details(event: Event) -> str:
    attrs = {k: v for k, v in event.attrs.items() if k not in ("family", "event")}
    return ", ".join(f"{k}={v}" for k, v in attrs.items())


def active_faults(history: History | None) -> list[ActiveFault]:
    """The faults armed and not disarmed, and the proxy toxics added and not removed."""
    if history is None:
        return []
    armed: dict[str, Event] = {}
    toxics: dict[tuple[str, str], Event] = {}
    fired: dict[str, int] = {}
    for event in history.snapshot():
        if event.kind == FAULT_ARMED:
            armed[event.source] = event
        elif event.kind == FAULT_DISARMED:
            armed.pop(event.source, None)
        elif event.kind == FAULT_FIRED:
            toxic = event.attrs.get("toxic")
            name = f"{event.source}:{toxic}" if toxic else event.source
            fired[name] = fired.get(name, 0) + 1
        elif event.kind == PROXY_TOXIC:
            what = event.attrs.get("event")
            pair = (event.source, str(event.attrs.get("toxic")))
            if what in ("added", "down"):
                toxics[pair] = event
            elif what in ("removed", "up"):
                toxics.pop(pair, None)
    found = [ActiveFault(source, str(e.attrs.get("family", "?")), _details(e), e.time,
                         fired.get(source, 0)) for source, e in armed.items()]
    for (proxy, toxic), event in toxics.items():
        kind = event.attrs.get("params") or event.attrs.get("toxic_kind") or toxic
        where = event.attrs.get("direction", "both")
        found.append(ActiveFault(proxy, "network", f"toxic {toxic!r}: {kind} on {where}",
                                 event.time, fired.get(f"{proxy}:{toxic}", 0)))
    return sorted(found, key=lambda f: (f.since, f.source))


def _stack(frame: FrameType | None) -> str:
    """The frames below the last one of pytest or pluggy: the test's own."""
    entries = traceback.extract_stack(frame)
    infra = [i for i, entry in enumerate(entries)
             if any(part in entry.filename for part in _HIDDEN)]
    shown = entries[infra[-1] + 1:] if infra else entries
    return "".join(traceback.format_list(shown)).rstrip() or "  (no frames of the test)"


def _tasks() -> str:
    loop = asyncio._get_running_loop()
    if loop is None:
        return ""
    parts = []
    for task in asyncio.all_tasks(loop):
        frames = task.get_stack()
        where = "".join(traceback.format_list(traceback.extract_stack(frames[-1])[-3:])) \
            if frames else "  (not started)\n"
        parts.append(f"Task {task.get_name()!r}:\n{where.rstrip()}")
    return "\n".join(parts)


def _threads() -> str:
    names = {t.ident: t.name for t in threading.enumerate()}
    rows = []
    for ident, frame in sys._current_frames().items():
        if ident == threading.main_thread().ident:
            continue
        code = frame.f_code
        rows.append(f"  {names.get(ident, ident)!s}: {code.co_qualname} "
                    f"({code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})")
    return "\n".join(sorted(rows))


def explain(headline: str, frame: FrameType | None, history: History | None) -> str:
    """The report of a hang: ``headline``, the active faults, the stacks."""
    faults = active_faults(history)
    clock = history.clock if history is not None else None
    now = clock.monotonic() if clock is not None else None
    lines = [headline, "Faults active at that moment" + (
        "" if now is None else f" (t={now:.6g}s on the test's clock)") + ":"]
    for fault in faults:
        age = "" if now is None else f" ({max(0.0, now - fault.since):.3g}s before)"
        lines.append(f"  - {fault.source} [{fault.family}] {fault.what}; active since "
                     f"t={fault.since:.6g}s{age}, fired {fault.fired} time(s)")
    if not faults:
        lines.append("  (none recorded in the test's history)")
    lines += ["Stack of the blocked thread (most recent call last):", _stack(frame)]
    tasks = _tasks()
    if tasks:
        lines += ["Tasks of the event loop running on it:", tasks]
    threads = _threads()
    if threads:
        lines += ["Other threads:", threads]
    return "\n".join(lines)
