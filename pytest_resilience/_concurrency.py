"""Waits with timeouts: ``FairSemaphore`` (FIFO, optional priorities), ``TimeoutLock``,
``AsyncRWLock`` (writer preference) and, in ``concurrency_pool``, ``ResourcePool``.

Nothing waits forever: every wait has a timeout (the primitive's default when none is
given) and raises ``LockTimeout`` naming what it waited for. Timeouts run on the
component's clock. On a clock other than ``SystemClock`` a blocked thread gives the
holders a short real moment (``VIRTUAL_GRACE`` seconds) to release, then lets the
remaining timeout pass on the clock; asyncio waits race ``clock.asleep``.
"""

# ruff: noqa: ASYNC109 - timeouts run on the injected clock, not asyncio.timeout
from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from types import TracebackType

from pytest_resilience import _validate
from pytest_resilience._clock import Clock, SystemClock
from pytest_resilience._errors import LockTimeout
from pytest_resilience._events import emit
from pytest_resilience.kinds import LOCK_TIMEOUT

__all__ = ["VIRTUAL_GRACE", "AsyncRWLock", "FairSemaphore", "TimeoutLock"]

#: Real seconds a thread blocked on a virtual clock waits for a release before the
#: remaining timeout is taken on the clock.
VIRTUAL_GRACE = 0.005


def check_timeout(name: str, value: object) -> float:
    """Validate a timeout in seconds (finite, > 0)."""
    return _validate.seconds(value, name, positive=True, what="a valid timeout", accepted=(
        "a finite number of seconds > 0: nothing here waits forever"))


def timed_out(resource: str, timeout: float, what: str, clock: Clock) -> LockTimeout:
    """Emit ``lock.timeout`` and build the error."""
    emit(LOCK_TIMEOUT, resource, clock, timeout=timeout, what=what)
    return LockTimeout(
        f"{resource}: {what} not acquired within {timeout}s",
        resource=resource,
        timeout=timeout,
        context={"what": what},
    )


def wait_event(event: threading.Event, clock: Clock, deadline: float) -> bool:
    """Block until ``event`` is set or the clock passes ``deadline``."""
    while True:
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            return event.is_set()
        if isinstance(clock, SystemClock):
            if event.wait(remaining):
                return True
        else:
            if event.wait(min(VIRTUAL_GRACE, remaining)):
                return True
            clock.sleep(remaining)
            return event.is_set()


async def wait_future(fut: asyncio.Future[None], clock: Clock, timeout: float) -> None:
    """Wait for ``fut`` or ``timeout`` seconds on ``clock``, whichever comes first."""
    if fut.done():
        return
    timer = asyncio.ensure_future(clock.asleep(timeout))
    try:
        await asyncio.wait((fut, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not timer.done():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Waiter:
    __slots__ = ("event", "future", "granted", "key")

    def __init__(self, key: tuple[int, int]) -> None:
        self.key = key
        self.granted = False
        self.event: threading.Event | None = None
        self.future: asyncio.Future[None] | None = None

    def __lt__(self, other: _Waiter) -> bool:
        return self.key < other.key

    def wake(self) -> None:
        self.granted = True
        if self.event is not None:
            self.event.set()
        elif self.future is not None:
            fut = self.future
            loop = fut.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)


class FairSemaphore:
    """A semaphore that serves waiters first come, first served (higher ``priority`` first).

    Shared by threads and asyncio tasks: ``acquire``/``release``, ``await aacquire()``,
    ``with sem:``, ``async with sem:`` or ``with sem.hold(timeout=..., priority=...)``.
    """

    def __init__(
        self,
        value: int = 1,
        *,
        name: str = "semaphore",
        timeout: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        value = _validate.count(value, "value", what="a valid size")
        self.name = name
        self.limit = value
        self.timeout = check_timeout("timeout", timeout)
        self.clock: Clock = _validate.clock(clock)
        self._value = value
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._what = "slot"

    @property
    def available(self) -> int:
        """Free slots right now."""
        return self._value

    @property
    def waiting(self) -> int:
        """Threads and tasks queued for a slot."""
        return len(self._queue)

    def _enqueue(self, priority: int) -> _Waiter | None:
        """Take a slot now (``None``) or a queued waiter; caller holds the lock."""
        if self._value > 0 and not self._queue:
            self._value -= 1
            return None
        waiter = _Waiter((-priority, next(self._seq)))
        heapq.heappush(self._queue, waiter)
        return waiter

    def _abandon(self, waiter: _Waiter) -> bool:
        """Leave the queue after a timeout; ``True`` if the slot was granted meanwhile."""
        with self._lock:
            if waiter.granted:
                return True
            self._queue.remove(waiter)
            heapq.heapify(self._queue)
            return False

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else check_timeout("timeout", timeout)

    def acquire(self, *, timeout: float | None = None, priority: int = 0) -> None:
        """Take a slot, waiting at most ``timeout`` seconds (default: the instance's)."""
        limit = self._timeout(timeout)
        with self._lock:
            waiter = self._enqueue(priority)
            if waiter is None:
                return
            waiter.event = threading.Event()
        deadline = self.clock.monotonic() + limit
        if wait_event(waiter.event, self.clock, deadline) or self._abandon(waiter):
            return
        raise timed_out(self.name, limit, f"{self._what} ({self.waiting} waiting)", self.clock)

    async def aacquire(self, *, timeout: float | None = None, priority: int = 0) -> None:
        """Take a slot from an asyncio task, waiting at most ``timeout`` clock seconds."""
        limit = self._timeout(timeout)
        with self._lock:
            waiter = self._enqueue(priority)
            if waiter is None:
                return
            waiter.future = asyncio.get_running_loop().create_future()
        try:
            await wait_future(waiter.future, self.clock, limit)
        except BaseException:
            if self._abandon(waiter):
                self.release()
            raise
        if not self._abandon(waiter):
            raise timed_out(self.name, limit, f"{self._what} ({self.waiting} waiting)", self.clock)

    def release(self) -> None:
        """Give a slot back: to the first waiter, else to the pool of free slots."""
        with self._lock:
            if self._queue:
                heapq.heappop(self._queue).wake()
                return
            if self._value >= self.limit:
                raise RuntimeError(f"{self.name}: released more often than acquired")
            self._value += 1

    @contextlib.contextmanager
    def hold(self, *, timeout: float | None = None, priority: int = 0) -> Iterator[None]:
        """``with sem.hold(timeout=2.0):`` takes a slot for the block."""
        self.acquire(timeout=timeout, priority=priority)
        try:
            yield
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def ahold(
        self, *, timeout: float | None = None, priority: int = 0
    ) -> AsyncIterator[None]:
        """``async with sem.ahold(timeout=2.0):`` takes a slot for the block."""
        await self.aacquire(timeout=timeout, priority=priority)
        try:
            yield
        finally:
            self.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> None:
        await self.aacquire()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, available={self._value})"


class TimeoutLock(FairSemaphore):
    """A FIFO mutex whose every acquisition has a timeout (default 30 s)."""

    def __init__(self, *, name: str = "lock", timeout: float = 30.0, clock: Clock | None = None):
        super().__init__(1, name=name, timeout=timeout, clock=clock)
        self._what = "lock"

    def locked(self) -> bool:
        """Whether somebody holds the lock."""
        return self._value == 0


class AsyncRWLock:
    """Many readers or one writer, for asyncio; waiting writers block new readers.

    Writer preference means a stream of readers cannot starve a writer. Use
    ``async with lock.read(timeout=...)`` and ``async with lock.write(timeout=...)``.
    """

    def __init__(
        self, *, name: str = "rwlock", timeout: float = 30.0, clock: Clock | None = None
    ) -> None:
        self.name = name
        self.timeout = check_timeout("timeout", timeout)
        self.clock: Clock = _validate.clock(clock)
        self.readers = 0
        self.writing = False
        self._writers: deque[_Waiter] = deque()
        self._readers_waiting: list[_Waiter] = []

    def _grant(self) -> None:
        if self.writing:
            return
        if self._writers:
            if not self.readers:
                self.writing = True
                self._writers.popleft().wake()
            return
        for waiter in self._readers_waiting:
            self.readers += 1
            waiter.wake()
        self._readers_waiting.clear()

    async def _wait(self, waiter: _Waiter, queue: deque[_Waiter] | list[_Waiter], limit: float,
                    what: str) -> None:
        waiter.future = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await wait_future(waiter.future, self.clock, limit)
        except BaseException:
            if waiter.granted:
                self._release(what)
            else:
                queue.remove(waiter)
                self._grant()
            raise
        if not waiter.granted:
            queue.remove(waiter)
            self._grant()
            raise timed_out(self.name, limit, f"{what} lock", self.clock)

    def _release(self, what: str) -> None:
        if what == "write":
            self.writing = False
        else:
            self.readers -= 1
        self._grant()

    @contextlib.asynccontextmanager
    async def read(self, *, timeout: float | None = None) -> AsyncIterator[None]:
        """Hold a shared read lock for the block."""
        limit = self.timeout if timeout is None else check_timeout("timeout", timeout)
        if self.writing or self._writers:
            await self._wait(_Waiter((0, 0)), self._readers_waiting, limit, "read")
        else:
            self.readers += 1
        try:
            yield
        finally:
            self._release("read")

    @contextlib.asynccontextmanager
    async def write(self, *, timeout: float | None = None) -> AsyncIterator[None]:
        """Hold the exclusive write lock for the block."""
        limit = self.timeout if timeout is None else check_timeout("timeout", timeout)
        if self.writing or self.readers or self._writers:
            await self._wait(_Waiter((0, 0)), self._writers, limit, "write")
        else:
            self.writing = True
        try:
            yield
        finally:
            self._release("write")

    def __repr__(self) -> str:
        return f"AsyncRWLock(name={self.name!r}, readers={self.readers}, writing={self.writing})"
