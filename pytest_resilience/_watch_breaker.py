"""``watch_breaker``: which calls a user's circuit breaker admitted, and which it refused.

The breaker's ``call`` method (``call=``, default ``"call"``) is watched. When its first
argument is the function to protect (``breaker.call(fn, *args)``, pybreaker's shape), the
observer wraps that function: if it ran, the call was admitted (``breaker.call`` with
``outcome`` ok/error, ``started`` and ``duration``); if it did not, the breaker refused it
(``breaker.rejected``, with the type of what it raised, or none when it returned a
fallback). Otherwise the exception type decides: an exception of ``rejected`` means
refused, anything else a failed admitted call. The breaker's own state is never read:
``check_breaker`` infers the state machine from these events.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import Any

from pytest_resilience._clock import Clock
from pytest_resilience._events import History
from pytest_resilience._observing import Sink, short
from pytest_resilience._patching import intercept
from pytest_resilience.kinds import BREAKER_CALL, BREAKER_REJECTED

__all__ = ["BreakerWatch", "watch_breaker"]

Rejected = type[BaseException] | tuple[type[BaseException], ...]


class _Admission:
    """Whether (and when) the protected function of one call started."""

    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started: float | None = None


class BreakerWatch:
    """The context manager ``watch_breaker`` returns."""

    def __init__(self, breaker: object, *, call: str | Sequence[str] = "call",
                 rejected: Rejected | None = None, name: str | None = None,
                 clock: Clock | None = None, history: History | None = None) -> None:
        names = (call,) if isinstance(call, str) else tuple(call)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise TypeError(f"call={call!r} is not a method name. Pass the name of the "
                            "breaker's method that runs a protected call, e.g. 'call'.")
        for method in names:
            if not callable(getattr(breaker, method, None)):
                raise ValueError(f"{short(breaker)} has no method {method!r}. Pass call= "
                                 "the method that runs a protected call.")
        kinds = rejected if isinstance(rejected, tuple) else (rejected,)
        if rejected is not None and not all(
                isinstance(k, type) and issubclass(k, BaseException) for k in kinds):
            raise TypeError(f"rejected={rejected!r} is not an exception class. Pass the "
                            "exception the breaker raises when it refuses a call.")
        self.breaker = breaker
        self.calls = names
        self.rejected = rejected
        self.name = name or type(breaker).__name__
        self._sink = Sink(clock, history)
        self._stack: ExitStack | None = None

    def __enter__(self) -> Any:
        if self._stack is not None:
            raise RuntimeError("this watch_breaker block is already active; make a new one.")
        with ExitStack() as stack:
            label = type(self.breaker).__qualname__
            for method in self.calls:
                patch = intercept(self.breaker, method, self, label=f"{label}.{method}")
                stack.callback(patch.restore)
            self._stack = stack.pop_all()
        return self.breaker

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    # -- the interceptor --------------------------------------------------------------
    def _protect(self, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], _Admission | None]:
        """Wrap the protected function (the first argument) to see whether it runs."""
        if not args or not callable(args[0]):
            if self.rejected is None:
                raise TypeError(
                    f"watch_breaker: {self.name}.{self.calls[0]} was called without a "
                    "function to protect, so admission cannot be seen. Pass rejected= the "
                    "exception the breaker raises when it refuses a call.")
            return args, None
        admission = _Admission()
        protected = args[0]
        sink = self._sink

        if inspect.iscoroutinefunction(protected):
            async def aprotected(*a: Any, **k: Any) -> Any:
                admission.started = sink.now()
                return await protected(*a, **k)

            return (aprotected, *args[1:]), admission

        def run_protected(*a: Any, **k: Any) -> Any:
            admission.started = sink.now()
            return protected(*a, **k)

        return (run_protected, *args[1:]), admission

    def _record(self, admission: _Admission | None, begun: float,
                error: BaseException | None) -> None:
        if admission is not None:
            admitted = admission.started is not None
        else:
            admitted = error is None or not isinstance(error, self.rejected or ())
        if not admitted:
            self._sink.emit(BREAKER_REJECTED, self.name,
                            error=None if error is None else type(error).__name__)
            return
        started = admission.started if admission is not None and \
            admission.started is not None else begun
        self._sink.emit(BREAKER_CALL, self.name, outcome="ok" if error is None else "error",
                        duration=max(0.0, self._sink.now() - started), started=started,
                        error=None if error is None else type(error).__name__)

    def run(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> Any:
        """One call through the breaker."""
        call_args, admission = self._protect(args)
        begun = self._sink.now()
        try:
            result = fn(*call_args, **kwargs)
        except BaseException as exc:
            self._record(admission, begun, exc)
            raise
        self._record(admission, begun, None)
        return result

    async def arun(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        """One ``async def`` call through the breaker."""
        call_args, admission = self._protect(args)
        begun = self._sink.now()
        try:
            result = await fn(*call_args, **kwargs)
        except BaseException as exc:
            self._record(admission, begun, exc)
            raise
        self._record(admission, begun, None)
        return result

    def __repr__(self) -> str:
        state = "active" if self._stack is not None else "inactive"
        return f"<watch_breaker {self.name!r} {state}>"


def watch_breaker(breaker: object, *, call: str | Sequence[str] = "call",
                  rejected: Rejected | None = None, name: str | None = None,
                  clock: Clock | None = None, history: History | None = None) -> BreakerWatch:
    """Record the calls ``breaker`` admitted (``breaker.call``) and refused
    (``breaker.rejected``), for ``check_breaker`` to judge.

    ``call``: the method (or methods) that run a protected call. ``rejected``: the
    exception the breaker raises when it refuses a call (needed only when that method does
    not take the function to run as its first argument).
    """
    return BreakerWatch(breaker, call=call, rejected=rejected, name=name, clock=clock,
                        history=history)
