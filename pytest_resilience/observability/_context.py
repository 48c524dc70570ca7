"""Operation context: a correlation id, an operation name and user fields, in ``contextvars``.

``with correlation("charge", user="u1"):`` (or ``async with``) sets the context for the
block; asyncio tasks created inside inherit it. Executor threads do not (a thread runs in
its own context), so submit work with ``submit_in_context`` or wrap it with ``bind``.
"""

from __future__ import annotations

import contextvars
import functools
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeVar

from pytest_resilience import _validate

__all__ = [
    "Correlation",
    "bind",
    "correlation",
    "current_context",
    "current_correlation_id",
    "submit_in_context",
]

P = ParamSpec("P")
R = TypeVar("R")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "pytest_resilience_context", default=_EMPTY
)


def current_context() -> Mapping[str, Any]:
    """The fields in effect here (read-only): ``correlation_id``, ``operation``, user fields."""
    return _CONTEXT.get()


def current_correlation_id() -> str | None:
    """The correlation id in effect here, if any."""
    value = _CONTEXT.get().get("correlation_id")
    return None if value is None else str(value)


class Correlation:
    """A context scope; use ``correlation(...)`` to make one. Sync and async context manager."""

    __slots__ = ("_fields", "_tokens")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._fields = dict(fields)
        self._tokens: list[contextvars.Token[Mapping[str, Any]]] = []

    def __enter__(self) -> Mapping[str, Any]:
        outer = _CONTEXT.get()
        fields = {**outer, **self._fields}
        if fields.get("correlation_id") is None:
            fields["correlation_id"] = uuid.uuid4().hex
        if "operation" in self._fields and "operation" in outer:
            fields["parent_operation"] = outer["operation"]
        context = MappingProxyType(fields)
        self._tokens.append(_CONTEXT.set(context))
        return context

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _CONTEXT.reset(self._tokens.pop())

    async def __aenter__(self) -> Mapping[str, Any]:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def correlation(
    operation: str | None = None, *, correlation_id: str | None = None, **fields: Any
) -> Correlation:
    """A scope adding ``operation`` and ``fields`` to the context.

    The correlation id is ``correlation_id`` if given, else the enclosing scope's, else a
    new random one; so nested operations share the id of the request that started them.
    """
    if operation is not None and not isinstance(operation, str):
        raise TypeError(f"operation={_validate.show(operation)} is not a string. "
                        "Pass a name or None.")
    ident: object = correlation_id
    if ident is not None and (isinstance(ident, bool)
                              or not isinstance(ident, str | int | uuid.UUID)):
        raise TypeError(f"correlation_id={_validate.show(correlation_id)} is not an id. "
                        "Pass a str, int or UUID (e.g. the request's id), or None.")
    scope: dict[str, Any] = dict(fields)
    if operation is not None:
        scope["operation"] = operation
    if correlation_id is not None:
        scope["correlation_id"] = str(correlation_id)
    return Correlation(scope)


def bind(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` made to run in a copy of the context current *now* (for threads, callbacks)."""
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(fn, *args, **kwargs)

    return run


def submit_in_context(
    executor: Executor, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> Future[R]:
    """``executor.submit(fn, ...)`` with the caller's context carried into the worker."""
    context = contextvars.copy_context()

    def run() -> R:
        return context.run(fn, *args, **kwargs)

    return executor.submit(run)
