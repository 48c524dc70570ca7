"""``watch_sleeps``: the code in the block runs on the test's virtual clock.

Inside the block, on the thread that entered it, every ``time.sleep`` and
``asyncio.sleep`` called by the user's code (and by third-party libraries) advances the
test's clock at once instead of waiting, and becomes a ``sleep.called`` event; sleeps on
the clock itself (``clock.sleep``/``clock.asleep``, what this project's components call)
are recorded too. So that a deadline computed around a sleep sees it pass, that code also
reads the test's clock from ``time.monotonic``/``perf_counter``/``time`` (and their
``_ns`` forms). The interpreter's own machinery (every standard-library module: threading,
asyncio, socket, subprocess ...), pytest, Hypothesis and this project keep real time.

Names bound early (``from time import sleep``, ``def f(now=time.monotonic)``,
``now = staticmethod(time.time)`` in a class) are rebound in the project's own modules
(not in site-packages). Zero-second sleeps are
yields, not waits: they are passed on and not recorded. Everything is restored exactly
when the block ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import sys
import sysconfig
import threading
import time
import types
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._events import History, active_history, emit
from pytest_resilience._observing import current_call, watching_clock
from pytest_resilience._patching import Patch
from pytest_resilience.kinds import SLEEP_CALLED

__all__ = ["INFRASTRUCTURE", "SleepWatch", "project_module", "watch_sleeps"]

#: Top-level packages that keep real time and real sleeps, besides the standard library.
INFRASTRUCTURE = frozenset({
    "_pytest", "pytest", "pluggy", "py", "hypothesis", "_hypothesis_pytestplugin",
    "pytest_resilience", "faults", "xdist", "execnet", "time_machine", "pytest_timeout",
    "pytest_asyncio", "pytest_benchmark", "coverage",
})
_REAL = frozenset(sys.stdlib_module_names) | INFRASTRUCTURE
_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) for key in ("purelib", "platlib", "stdlib", "platstdlib")
    if (p := sysconfig.get_paths().get(key))
)
_real_caller: dict[str, bool] = {}
_project: dict[tuple[str, object], bool] = {}
_IN_CLOCK: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "pytest_resilience_in_clock", default=False)

_TIME_READS = ("monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time",
               "time_ns")


def _keeps_real_time(frame: FrameType | None) -> bool:
    """Whether the code of ``frame`` belongs to the interpreter, the test tools or us."""
    name = frame.f_globals.get("__name__", "") if frame is not None else ""
    known = _real_caller.get(name)
    if known is None:
        known = _real_caller[name] = name.partition(".")[0] in _REAL
    return known


def project_module(name: str, module: types.ModuleType) -> bool:
    """A module of the user's project: not the standard library, not site-packages."""
    file = getattr(module, "__file__", None)
    known = _project.get((name, file))
    if known is None:
        known = _project[(name, file)] = _in_project(name, file)
    return known


def _in_project(name: str, file: object) -> bool:
    if name.partition(".")[0] in _REAL or not isinstance(file, str):
        return False
    try:
        path = str(Path(file).resolve())
    except OSError:
        return False
    return not path.startswith(_LIBRARY_DIRS)


class SleepWatch:
    """The context manager ``watch_sleeps`` returns; ``clock`` is the clock it drives."""

    def __init__(self, clock: Clock | None = None, *, history: History | None = None,
                 name: str = "sleeps", clocks: bool = True) -> None:
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock={_validate.show(clock)} is not a Clock. Pass the test's "
                            "clock, e.g. watch_sleeps(clock) with the `clock` fixture.")
        _validate.text(name, "name")
        self._given = clock
        self.history = _validate.history(history)
        self.name = name
        self.clocks = bool(clocks)
        self.clock: Clock | None = None
        self._stack: ExitStack | None = None
        self._owner = 0
        self._clock_sleep: Callable[[float], None] = _no_sleep
        self._clock_asleep: Callable[[float], Any] = _no_sleep

    # -- entering and leaving ---------------------------------------------------------
    def __enter__(self) -> SleepWatch:
        if self._stack is not None:
            raise RuntimeError("this watch_sleeps block is already active; make a new one.")
        clock = self._given
        if clock is None:
            target = self.history if self.history is not None else active_history()
            clock = target.clock if target is not None else None
        if clock is None:
            raise ValueError("watch_sleeps() found no clock: pass the test's clock "
                             "(watch_sleeps(clock) with the `clock` fixture) or record into a "
                             "History(clock=...).")
        self.clock = clock
        self._owner = threading.get_ident()
        self._clock_sleep, self._clock_asleep = clock.sleep, clock.asleep
        with ExitStack() as stack:
            self._install(stack, clock)
            stack.enter_context(watching_clock(clock))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def _install(self, stack: ExitStack, clock: Clock) -> None:
        targets: list[tuple[types.ModuleType, str, Any]] = [
            (time, "sleep", self._make_sleep(time.sleep)),
            (asyncio, "sleep", self._make_asleep(asyncio.sleep)),
        ]
        if self.clocks:
            targets += [(time, attr, self._make_read(getattr(time, attr), attr, clock))
                        for attr in _TIME_READS]
        replacements = {id(getattr(owner, attr)): (getattr(owner, attr), fake)
                        for owner, attr, fake in targets}
        for owner, attr, fake in targets:
            _push(stack, Patch(owner, attr, fake).apply())
        for name, module in list(sys.modules.items()):
            if module is not None and project_module(name, module):
                _rebind_module(stack, module, replacements)
        if hasattr(clock, "__dict__"):
            _push(stack, Patch(clock, "sleep", self._recorded_clock_sleep).apply())
            _push(stack, Patch(clock, "asleep", self._recorded_clock_asleep).apply())

    # -- the replacements -------------------------------------------------------------
    def _virtual(self, frame: FrameType | None) -> bool:
        return threading.get_ident() == self._owner and not _keeps_real_time(frame)

    def _record(self, seconds: float, via: str, frame: FrameType | None) -> None:
        if self.clock is None:
            return
        caller = frame.f_code.co_qualname if frame is not None else "?"
        emit(SLEEP_CALLED, self.name, self.clock, history=self.history, seconds=seconds,
             via=via, caller=caller, call=current_call())

    def _make_sleep(self, real: Callable[[float], None]) -> Callable[[float], None]:
        def sleep(seconds: float) -> None:
            frame = sys._getframe(1)
            if seconds == 0 or _IN_CLOCK.get() or not self._virtual(frame):
                real(seconds)
                return
            value = _duration(seconds)
            self._record(value, "time.sleep", frame)
            token = _IN_CLOCK.set(True)
            try:
                self._clock_sleep(value)
            finally:
                _IN_CLOCK.reset(token)

        return sleep

    def _make_asleep(self, real: Callable[..., Any]) -> Callable[..., Any]:
        async def sleep(delay: float, result: Any = None) -> Any:
            frame = sys._getframe(1)
            if delay == 0 or _IN_CLOCK.get() or not self._virtual(frame):
                return await real(delay, result)
            value = _duration(delay)
            self._record(value, "asyncio.sleep", frame)
            token = _IN_CLOCK.set(True)
            try:
                await self._clock_asleep(value)
            finally:
                _IN_CLOCK.reset(token)
            return result

        return sleep

    def _make_read(self, real: Callable[[], Any], attr: str,
                   clock: Clock) -> Callable[[], Any]:
        wall = attr.startswith("time")
        nanos = attr.endswith("_ns")

        def read() -> Any:
            if not self._virtual(sys._getframe(1)):
                return real()
            value = clock.time() if wall else clock.monotonic()
            return int(value * 1_000_000_000) if nanos else value

        read.__name__ = read.__qualname__ = attr
        return read

    def _recorded_clock_sleep(self, seconds: float) -> None:
        if seconds and not _IN_CLOCK.get():
            self._record(float(seconds), "clock.sleep", sys._getframe(1))
        self._clock_sleep(seconds)

    async def _recorded_clock_asleep(self, seconds: float) -> None:
        if seconds and not _IN_CLOCK.get():
            self._record(float(seconds), "clock.asleep", sys._getframe(1))
        await self._clock_asleep(seconds)

    def __repr__(self) -> str:
        state = "active" if self._stack is not None else "inactive"
        return f"<watch_sleeps {self.name!r} on {self.clock!r} {state}>"


def _no_sleep(seconds: float) -> None:
    raise RuntimeError("watch_sleeps is not active")


def _duration(seconds: float) -> float:
    value = float(seconds)
    if math.isnan(value) or value < 0:
        raise ValueError("sleep length must be non-negative")
    return value


def _push(stack: ExitStack, patch: Patch) -> None:
    stack.callback(patch.restore)


def _rebind_module(stack: ExitStack, module: types.ModuleType,
                   replacements: dict[int, tuple[Any, Any]]) -> None:
    """Rebind the module's globals, and the defaults of the functions and methods it
    defines, that hold one of the real functions."""
    namespace = vars(module)
    for key, value in list(namespace.items()):
        found = replacements.get(id(value))
        if found is not None and found[0] is value:
            _push(stack, Patch(module, key, found[1]).apply())
    for value in list(namespace.values()):
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if isinstance(value, types.FunctionType):
            _rebind_defaults(stack, value, replacements)
        elif isinstance(value, type):
            for key, member in list(vars(value).items()):
                func = getattr(member, "__func__", member)
                found = replacements.get(id(func))
                if found is not None and found[0] is func:  # now = staticmethod(time.time)
                    fake = staticmethod(found[1]) if isinstance(member, staticmethod) \
                        else found[1]
                    _push(stack, Patch(value, key, fake).apply())
                elif isinstance(func, types.FunctionType):
                    _rebind_defaults(stack, func, replacements)


def _rebind_defaults(stack: ExitStack, fn: types.FunctionType,
                     replacements: dict[int, tuple[Any, Any]]) -> None:
    defaults = fn.__defaults__
    if defaults and any(id(d) in replacements for d in defaults):
        new = tuple(_swap(d, replacements) for d in defaults)
        _push(stack, Patch(fn, "__defaults__", new).apply())
    kwdefaults = fn.__kwdefaults__
    if kwdefaults and any(id(d) in replacements for d in kwdefaults.values()):
        new_kw = {k: _swap(v, replacements) for k, v in kwdefaults.items()}
        _push(stack, Patch(fn, "__kwdefaults__", new_kw).apply())


def _swap(value: Any, replacements: dict[int, tuple[Any, Any]]) -> Any:
    found = replacements.get(id(value))
    return found[1] if found is not None and found[0] is value else value


def watch_sleeps(clock: Clock | None = None, *, history: History | None = None,
                 name: str = "sleeps", clocks: bool = True) -> SleepWatch:
    """Run the block's sleeps on the test's ``clock`` and record each as ``sleep.called``.

    ``clock``: the test's ``VirtualClock`` (default: the history's clock). ``history``:
    where events go (default: the active history). ``clocks=False`` leaves
    ``time.monotonic``/``time.time`` reads on real time (only sleeps are virtual).
    """
    return SleepWatch(clock, history=history, name=name, clocks=clocks)
