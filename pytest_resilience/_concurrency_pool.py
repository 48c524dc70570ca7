"""``ResourcePool``: bounded, health-checked reuse of connections, sessions, clients."""

# ruff: noqa: ASYNC109 - timeouts run on the injected clock, not asyncio.timeout
from __future__ import annotations

import contextlib
import inspect
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._concurrency import FairSemaphore, check_timeout

__all__ = ["ResourcePool"]

R = TypeVar("R")


class ResourcePool(Generic[R]):
    """At most ``size`` resources, made by ``factory`` on demand and reused.

    On checkout an idle resource is checked with ``check(resource)`` (falsy or raising
    means broken: it is closed and another is tried). A block that raises one of
    ``discard_on`` discards its resource instead of returning it. Exhaustion waits FIFO
    for at most ``timeout`` seconds, then raises ``LockTimeout``. In the async path
    ``factory``, ``check`` and ``close`` may be coroutine functions.
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        size: int,
        check: Callable[[R], Any] | None = None,
        close: Callable[[R], Any] | None = None,
        discard_on: tuple[type[BaseException], ...] = (Exception,),
        timeout: float = 30.0,
        name: str = "pool",
        clock: Clock | None = None,
    ) -> None:
        if not callable(factory):
            raise TypeError(f"factory={_validate.show(factory)} is not callable. Pass a "
                            "function that makes one.")
        size = _validate.count(size, "size", what="a valid pool size")
        _validate.callable_or_none(check, "check", accepted="a function of one resource "
                                   "returning whether it is healthy, or None")
        _validate.callable_or_none(close, "close", accepted="a function of one resource, "
                                   "or None")
        discard_on = _validate.exception_types(discard_on, "discard_on", empty=True)
        self._slots = FairSemaphore(size, name=name, timeout=timeout, clock=clock)
        self._slots._what = "resource"
        self.name = name
        self.size = size
        self.timeout = check_timeout("timeout", timeout)
        self.factory = factory
        self.check = check
        self.close_resource = close
        self.discard_on = discard_on
        self._idle: deque[R] = deque()
        self._lock = threading.Lock()
        self.created = 0
        self.discarded = 0

    @property
    def idle(self) -> int:
        """Resources waiting for reuse."""
        return len(self._idle)

    @property
    def in_use(self) -> int:
        """Resources checked out now."""
        return self.size - self._slots.available

    def _pop_idle(self) -> R | None:
        with self._lock:
            return self._idle.popleft() if self._idle else None

    def _put_back(self, resource: R, broken: bool) -> Any:
        try:
            if broken:
                self.discarded += 1
                if self.close_resource is not None:
                    return self.close_resource(resource)
                return None
            with self._lock:
                self._idle.append(resource)
            return None
        finally:
            self._slots.release()

    # -- sync --------------------------------------------------------------------------
    def acquire(self, *, timeout: float | None = None) -> R:
        """Check out a healthy resource (make one if none is idle); ``release`` it after."""
        self._slots.acquire(timeout=timeout)
        try:
            while (resource := self._pop_idle()) is not None:
                if self._healthy(resource):
                    return resource
                self._discard(resource)
            made: R = self.factory()
            self.created += 1
            return made
        except BaseException:
            self._slots.release()
            raise

    def _healthy(self, resource: R) -> bool:
        if self.check is None:
            return True
        try:
            return bool(self.check(resource))
        except Exception:
            return False

    def _discard(self, resource: R) -> None:
        self.discarded += 1
        if self.close_resource is not None:
            with contextlib.suppress(Exception):
                self.close_resource(resource)

    def release(self, resource: R, *, broken: bool = False) -> None:
        """Return ``resource``; ``broken=True`` closes and drops it."""
        self._put_back(resource, broken)

    @contextlib.contextmanager
    def resource(self, *, timeout: float | None = None) -> Iterator[R]:
        """``with pool.resource() as conn:``; an exception in ``discard_on`` drops it."""
        item = self.acquire(timeout=timeout)
        broken = False
        try:
            yield item
        except self.discard_on:
            broken = True
            raise
        finally:
            self.release(item, broken=broken)

    # -- async -------------------------------------------------------------------------
    async def aacquire(self, *, timeout: float | None = None) -> R:
        """``acquire`` for asyncio (awaits async ``factory``/``check``)."""
        await self._slots.aacquire(timeout=timeout)
        try:
            while (resource := self._pop_idle()) is not None:
                if await self._ahealthy(resource):
                    return resource
                self.discarded += 1
                if self.close_resource is not None:
                    with contextlib.suppress(Exception):
                        await _maybe_await(self.close_resource(resource))
            made: R = await _maybe_await(self.factory())
            self.created += 1
            return made
        except BaseException:
            self._slots.release()
            raise

    async def _ahealthy(self, resource: R) -> bool:
        if self.check is None:
            return True
        try:
            return bool(await _maybe_await(self.check(resource)))
        except Exception:
            return False

    async def arelease(self, resource: R, *, broken: bool = False) -> None:
        """Return ``resource``; ``broken=True`` closes (awaiting an async ``close``)."""
        await _maybe_await(self._put_back(resource, broken))

    @contextlib.asynccontextmanager
    async def aresource(self, *, timeout: float | None = None) -> AsyncIterator[R]:
        """``async with pool.aresource() as conn:``."""
        item = await self.aacquire(timeout=timeout)
        broken = False
        try:
            yield item
        except self.discard_on:
            broken = True
            raise
        finally:
            await self.arelease(item, broken=broken)

    def close(self) -> None:
        """Close every idle resource (checked-out ones are closed when returned broken)."""
        with self._lock:
            idle, self._idle = list(self._idle), deque()
        for item in idle:
            self._discard(item)

    def __repr__(self) -> str:
        return f"ResourcePool(name={self.name!r}, size={self.size}, idle={self.idle})"


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
