"""``TokenBucket`` (continuous refill from the clock) and the ``RateLimiter`` registry."""

# ruff: noqa: ASYNC109 - timeouts run on the injected clock, not asyncio.timeout
from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from pytest_resilience import _events, _validate
from pytest_resilience._clock import Clock
from pytest_resilience._errors import RateLimitExceeded
from pytest_resilience._events import emit
from pytest_resilience.kinds import RATELIMIT_ACQUIRED, RATELIMIT_REJECTED

if TYPE_CHECKING:
    from pytest_resilience._storage import BucketStore, Storage

__all__ = ["RateLimiter", "TokenBucket"]


def _positive(name: str, value: object) -> float:
    return _validate.number(value, name, low=0.0, low_open=True, what="valid")


class TokenBucket:
    """``capacity`` tokens (the burst), refilled continuously at ``rate`` per second.

    Never admits more than ``capacity + rate * elapsed`` tokens over any run. Starts
    full unless ``initial`` says otherwise. Thread-safe; ``aacquire`` waits with
    ``clock.asleep`` so it never blocks the event loop. With ``storage=RedisStorage(...)``
    every bucket of the same ``name`` on that storage shares one set of tokens.
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        initial: float | None = None,
        name: str = "bucket",
        clock: Clock | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.rate = _positive("rate", rate)
        self.capacity = _positive("capacity", capacity)
        start = self.capacity if initial is None else _validate.number(
            initial, "initial", low=0.0, high=self.capacity, what="inside the bucket",
            accepted="0 <= initial <= capacity, or None for a full bucket")
        self.name = name
        self.clock: Clock = _validate.clock(clock)
        self._mono = self.clock.monotonic
        self._tokens = start
        self._initial = start
        self._last = self._mono()
        self._lock = threading.Lock()
        self.storage = _validate.storage(storage)
        self._store: BucketStore | None = None
        if storage is not None:
            self._store = storage.bucket_store(self)
        if self._store is not None:
            self._take = self._store.take  # type: ignore[method-assign]
            self._wait_for = self._store.reserve  # type: ignore[method-assign]

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        if self._store is not None:
            return self._store.peek()
        with self._lock:
            return self._refill(self._mono())

    def _refill(self, now: float) -> float:
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
        return self._tokens

    def _check(self, n: float) -> None:
        _validate.number(n, "n", low=0.0, low_open=True, high=self.capacity,
                         what=f"a number of tokens a bucket of capacity {self.capacity} "
                         "can grant", accepted="0 < n <= capacity")

    def try_acquire(self, n: float = 1) -> bool:
        """Take ``n`` tokens if they are there now; never waits."""
        granted = self._take(n)
        if _events.listening():
            self._check(n)
            emit(RATELIMIT_ACQUIRED if granted else RATELIMIT_REJECTED, self.name,
                 self.clock, tokens=n, waited=0.0)
        elif not granted:
            self._check(n)
        return granted

    def _take(self, n: float) -> bool:
        with self._lock:
            now = self._mono()
            if now > self._last:
                tokens = self._tokens + (now - self._last) * self.rate
                self._tokens = tokens if tokens < self.capacity else self.capacity
                self._last = now
            try:
                granted = self._tokens >= n > 0
            except TypeError:  # not a number: refused by _check with its message
                granted = False
            if granted:
                self._tokens -= n
        return granted

    def _wait_for(self, n: float) -> float:
        """Take ``n`` tokens (returns 0) or the seconds until they are there."""
        with self._lock:
            tokens = self._refill(self._mono())
            if tokens >= n:
                self._tokens -= n
                return 0.0
            return (n - tokens) / self.rate

    def _reserve(self, n: float, waited: float, timeout: float | None,
                 wait: float | None = None) -> float:
        """Take ``n`` tokens (returns 0) or the seconds to wait before trying again;
        ``wait`` is the store's answer when the caller already asked it."""
        if wait is None:
            wait = self._wait_for(n)
        if wait == 0:
            return 0.0
        if timeout is not None and waited + wait > timeout:
            emit(RATELIMIT_REJECTED, self.name, self.clock, tokens=n, waited=waited)
            raise RateLimitExceeded(
                f"rate limit {self.name!r}: {n} token(s) not available within {timeout}s "
                f"(next in {wait:.3f}s)",
                name=self.name,
                retry_after=wait,
                context={"tokens": n, "waited": waited, "timeout": timeout},
            )
        return wait

    def acquire(self, n: float = 1, *, timeout: float | None = None) -> float:
        """Wait until ``n`` tokens are taken; returns the seconds waited.

        Raises ``RateLimitExceeded`` at once when the wait would exceed ``timeout``.
        """
        if self._take(n):
            if _events.listening():
                emit(RATELIMIT_ACQUIRED, self.name, self.clock, tokens=n, waited=0.0)
            return 0.0
        self._check(n)
        started = self._mono()
        for wait in self._waits(n, started, timeout):
            self.clock.sleep(wait)
        waited = self._mono() - started
        emit(RATELIMIT_ACQUIRED, self.name, self.clock, tokens=n, waited=waited)
        return waited

    async def aacquire(self, n: float = 1, *, timeout: float | None = None) -> float:
        """``acquire`` for asyncio: waits with ``clock.asleep``; a shared store's round
        trips run in the loop's executor, so the loop never blocks."""
        store = self._store
        if self._take(n) if store is None else await asyncio.to_thread(store.take, n):
            if _events.listening():
                emit(RATELIMIT_ACQUIRED, self.name, self.clock, tokens=n, waited=0.0)
            return 0.0
        self._check(n)
        started = self._mono()
        if store is None:
            for wait in self._waits(n, started, timeout):
                await self.clock.asleep(wait)
        else:
            while True:
                answer = await asyncio.to_thread(store.reserve, n)
                wait = self._reserve(n, self._mono() - started, timeout, answer)
                if wait == 0:
                    break
                await self.clock.asleep(wait)
        waited = self._mono() - started
        emit(RATELIMIT_ACQUIRED, self.name, self.clock, tokens=n, waited=waited)
        return waited

    def _waits(self, n: float, started: float, timeout: float | None) -> Iterator[float]:
        # Each wait is long enough for the deficit, so only contention repeats it; the
        # timeout bounds the loop when there is one.
        while True:
            wait = self._reserve(n, self._mono() - started, timeout)
            if wait == 0:
                return
            yield wait

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, capacity={self.capacity}, name={self.name!r})"


class RateLimiter:
    """Named per-service buckets: ``limiter.configure("search", rate=50, capacity=100)``.

    Unknown names use ``default=(rate, capacity)`` when given, else raise ``KeyError``.
    Every bucket keeps its tokens in ``storage`` when one is given.
    """

    def __init__(
        self,
        limits: dict[str, tuple[float, float]] | None = None,
        *,
        default: tuple[float, float] | None = None,
        clock: Clock | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.clock: Clock = _validate.clock(clock)
        self.storage = _validate.storage(storage)
        self.default = default
        if default is not None:
            if not (isinstance(default, tuple) and len(default) == 2):
                raise TypeError(f"default={_validate.show(default)} is not a (rate, capacity) "
                                "pair. Pass e.g. default=(50, 100), or None.")
            _positive("default rate", default[0])
            _positive("default capacity", default[1])
        self.default = default
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        if limits is not None and not isinstance(limits, Mapping):
            raise TypeError(f"limits={_validate.show(limits)} is not a mapping. Pass "
                            "{name: (rate, capacity)}, or None.")
        for name, pair in (limits or {}).items():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(f"limits[{name!r}]={_validate.show(pair)} is not a (rate, "
                                "capacity) pair. Pass e.g. {'search': (50, 100)}.")
            self.configure(name, rate=pair[0], capacity=pair[1])

    def configure(self, name: str, *, rate: float, capacity: float) -> TokenBucket:
        """Set (or replace) the limit of ``name``; returns its bucket."""
        bucket = TokenBucket(rate, capacity, name=name, clock=self.clock, storage=self.storage)
        with self._lock:
            self._buckets[name] = bucket
        return bucket

    def bucket(self, name: str) -> TokenBucket:
        """The bucket of ``name``."""
        found = self._buckets.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._buckets:
                if self.default is None:
                    known = ", ".join(sorted(self._buckets)) or "none"
                    raise KeyError(
                        f"no rate limit named {name!r} (configured: {known}). "
                        "Call configure(name, rate=, capacity=) or pass default=(rate, capacity)."
                    )
                rate, capacity = self.default
                self._buckets[name] = TokenBucket(rate, capacity, name=name, clock=self.clock,
                                                  storage=self.storage)
            return self._buckets[name]

    __getitem__ = bucket

    def __contains__(self, name: object) -> bool:
        return name in self._buckets

    def try_acquire(self, name: str, n: float = 1) -> bool:
        """``bucket(name).try_acquire(n)``."""
        return self.bucket(name).try_acquire(n)

    def acquire(self, name: str, n: float = 1, *, timeout: float | None = None) -> float:
        """``bucket(name).acquire(n, timeout=...)``."""
        return self.bucket(name).acquire(n, timeout=timeout)

    async def aacquire(self, name: str, n: float = 1, *, timeout: float | None = None) -> float:
        """``await bucket(name).aacquire(n, timeout=...)``."""
        return await self.bucket(name).aacquire(n, timeout=timeout)
