"""``watch_calls``: every call of a function, or of named methods, becomes two events.

``call.start`` (``function``, ``args`` summary, ``call`` id, ``parent``: the watched call
it runs inside, ``correlation_id`` when one is set) and ``call.end`` (``outcome`` ok/error,
``result`` and ``error`` type names, a short ``value`` of the result, ``duration``). The
source is the layer: ``name=``, else the function's qualified name. ``async def``
functions are timed from the call to the end of the ``await``.

A function is replaced wherever a project module or its defining namespace holds it;
``with watch_calls(fn) as fn:`` also gives the watched function itself, for code that
holds the original elsewhere (a parameter, a list).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from contextlib import ExitStack
from types import TracebackType
from typing import Any

from pytest_resilience._clock import Clock
from pytest_resilience._events import History, emit
from pytest_resilience._observing import (
    Sink,
    current_call,
    enter_call,
    leave_call,
    next_call_id,
    short,
    summarise_args,
)
from pytest_resilience._patching import MISSING, Patch, intercept, own_entry, plain_wrapper
from pytest_resilience._watch_sleeps import project_module
from pytest_resilience.kinds import CALL_END, CALL_START

__all__ = ["CallWatch", "watch_calls"]


def _correlation_id() -> str | None:
    module = sys.modules.get("pytest_resilience.observability._context")
    if module is None:  # nobody set a correlation id: the context module was never loaded
        return None
    value: str | None = module.current_correlation_id()
    return value


class CallWatch:
    """The context manager ``watch_calls`` returns; ``source`` names its layer."""

    def __init__(self, target: object, *names: str, name: str | None = None,
                 clock: Clock | None = None, history: History | None = None) -> None:
        if not names and isinstance(target, types.MethodType):
            names = (target.__func__.__name__,)
            target = target.__self__
        function = isinstance(target, types.FunctionType | types.BuiltinFunctionType)
        if not function and not names:
            if isinstance(target, types.ModuleType | type) or not callable(target):
                raise TypeError(
                    f"watch_calls({short(target)}) needs method names: pass "
                    "watch_calls(obj, 'method', ...) for an object, class or module, or a "
                    "function.")
            names = ("__call__",)
        if function and names:
            raise TypeError(f"watch_calls({short(target)}, ...): a function takes no method "
                            "names. Pass the function alone, or its module and its name.")
        for method in names:
            if not isinstance(method, str) or not method:
                raise TypeError(f"method name {method!r} is not a string. Pass names such "
                                "as 'get'.")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name={name!r} is not a layer name. Pass a non-empty string.")
        self.target = target
        self.names = names
        self.name = name
        self._sink = Sink(clock, history)
        self._stack: ExitStack | None = None
        self._wrapper: Callable[..., Any] | None = None

    @property
    def source(self) -> str:
        """The events' source: ``name=``, else the watched function's qualified name."""
        return self.name or self._label(self.names[0] if self.names else None)

    def _label(self, method: str | None) -> str:
        target = self.target
        if method is None:
            return str(getattr(target, "__qualname__", getattr(target, "__name__", "call")))
        owner = target if isinstance(target, types.ModuleType | type) else type(target)
        prefix = owner.__name__ if isinstance(owner, types.ModuleType) else owner.__qualname__
        return f"{prefix}.{method}"

    # -- entering and leaving ---------------------------------------------------------
    def __enter__(self) -> Any:
        if self._stack is not None:
            raise RuntimeError("this watch_calls block is already active; make a new one.")
        with ExitStack() as stack:
            if self.names:
                for method in self.names:
                    patch = intercept(self.target, method, self, label=self._label(method))
                    stack.callback(patch.restore)
            else:
                fn: Callable[..., Any] = self.target  # type: ignore[assignment]
                label = self._label(None)
                self._wrapper = plain_wrapper(fn, self, label)
                for owner, key in _homes(fn):
                    stack.callback(Patch(owner, key, self._wrapper).apply().restore)
            self._stack = stack.pop_all()
        return self._wrapper if self._wrapper is not None else self.target

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    # -- the interceptor --------------------------------------------------------------
    def _start(self, label: str, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> tuple[int, float, History | None, Clock]:
        call = next_call_id()
        history, clock = self._sink.target()
        emit(CALL_START, self.name or label, clock, history=history, function=label,
             args=summarise_args(args, kwargs), call=call, parent=current_call(),
             correlation_id=_correlation_id())
        return call, clock.monotonic(), history, clock

    def _end(self, label: str, started: tuple[int, float, History | None, Clock], *,
             result: Any = MISSING, error: BaseException | None = None) -> None:
        call, begun, history, clock = started
        duration = max(0.0, clock.monotonic() - begun)
        if error is not None:
            emit(CALL_END, self.name or label, clock, history=history, function=label,
                 call=call, outcome="error", result=None, error=type(error).__name__,
                 duration=duration)
        else:
            emit(CALL_END, self.name or label, clock, history=history, function=label,
                 call=call, outcome="ok", result=type(result).__name__, error=None,
                 duration=duration, value=short(result))

    def run(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> Any:
        """Run one synchronous call between its two events."""
        started = self._start(label, args, kwargs)
        token = enter_call(started[0])
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            leave_call(token)
            self._end(label, started, error=exc)
            raise
        leave_call(token)
        self._end(label, started, result=result)
        return result

    async def arun(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        """Run one ``async def`` call between its two events."""
        started = self._start(label, args, kwargs)
        token = enter_call(started[0])
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            leave_call(token)
            self._end(label, started, error=exc)
            raise
        leave_call(token)
        self._end(label, started, result=result)
        return result

    def __repr__(self) -> str:
        state = "active" if self._stack is not None else "inactive"
        return f"<watch_calls {self.source!r} {state}>"


def _homes(fn: Callable[..., Any]) -> list[tuple[object, str]]:
    """Where ``fn`` is stored: its defining namespace and the project modules' globals."""
    homes: list[tuple[object, str]] = []
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    parts = str(getattr(fn, "__qualname__", "")).split(".")
    if module is not None and "<locals>" not in parts:
        owner: object = module
        for part in parts[:-1]:
            owner = getattr(owner, part, None)
        if owner is not None and own_entry(owner, parts[-1]) is fn:
            homes.append((owner, parts[-1]))
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not project_module(mod_name, mod):
            continue
        for key, value in list(vars(mod).items()):
            if value is fn and (mod, key) not in homes:
                homes.append((mod, key))
    return homes


def watch_calls(target: object, *names: str, name: str | None = None,
                clock: Clock | None = None, history: History | None = None) -> CallWatch:
    """Record every call of ``target`` (a function) or of its methods ``names`` (an object,
    class or module) as ``call.start``/``call.end`` events.

    ``name``: the layer (the events' source; default: the function's qualified name).
    ``with watch_calls(fn) as fn:`` yields the watched function; for an object it yields
    the object. Restores exactly what it replaced when the block ends.
    """
    return CallWatch(target, *names, name=name, clock=clock, history=history)
