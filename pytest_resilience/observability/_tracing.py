"""``trace_operation(name)``: time a block or function and record it as one event.

The event is ``trace.operation`` from source ``name`` with ``duration`` (seconds on the
clock), ``outcome`` (``ok`` / ``error`` / ``cancelled``), ``error`` (repr or None),
``peak_rss_delta`` (bytes the block raised the process's peak RSS by; None where the
platform cannot tell) and ``correlation_id``. The block runs inside ``correlation(name)``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from pytest_resilience import _validate
from pytest_resilience._clock import Clock, SystemClock
from pytest_resilience._events import emit
from pytest_resilience.kinds import TRACE_OPERATION
from pytest_resilience.observability._context import Correlation, correlation

__all__ = ["TraceOperation", "peak_rss", "trace_operation"]

P = ParamSpec("P")
R = TypeVar("R")


def peak_rss() -> int | None:
    """The process's peak resident set size in bytes, or None where unknown.

    On Linux this is ``VmHWM`` of ``/proc/self/status``, the high-water mark of this
    process's own memory map: ``ru_maxrss`` would start at the parent's RSS after a
    fork + exec, hiding any growth below it.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "cancelled"
    return "error"


class TraceOperation:
    """One traced scope: a sync/async context manager and a decorator (a fresh scope per
    call). Make it with ``trace_operation``.
    """

    def __init__(self, name: str, clock: Clock, fields: Mapping[str, Any]) -> None:
        self.name = name
        self.clock = clock
        self.fields = dict(fields)
        self._stack: list[tuple[float, int | None, Correlation, str | None]] = []

    def _fresh(self) -> TraceOperation:
        return TraceOperation(self.name, self.clock, self.fields)

    def __enter__(self) -> TraceOperation:
        scope = correlation(self.name, **self.fields)
        context = scope.__enter__()
        self._stack.append((self.clock.monotonic(), peak_rss(), scope,
                            context.get("correlation_id")))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        started, rss_before, scope, correlation_id = self._stack.pop()
        duration = self.clock.monotonic() - started
        rss_after = peak_rss()
        try:
            emit(TRACE_OPERATION, self.name, self.clock, duration=duration,
                 outcome=_outcome(exc), error=None if exc is None else repr(exc),
                 peak_rss_delta=(None if rss_before is None or rss_after is None
                                 else rss_after - rss_before),
                 correlation_id=correlation_id)
        finally:
            scope.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> TraceOperation:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Trace every call of ``fn`` (sync or async)."""
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def traced_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await async_fn(*args, **kwargs)

            return cast(Callable[P, R], traced_async)

        @functools.wraps(fn)
        def traced(*args: P.args, **kwargs: P.kwargs) -> R:
            with self._fresh():
                return fn(*args, **kwargs)

        return traced


def trace_operation(name: str, *, clock: Clock | None = None, **fields: Any) -> TraceOperation:
    """Trace a block (``with`` / ``async with``) or a function (decorator) as ``name``;
    ``fields`` join the correlation context of the block.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name={_validate.show(name)} is not an operation name. Pass a "
                        f"non-empty string.")
    return TraceOperation(name, clock if clock is not None else SystemClock(), fields)
