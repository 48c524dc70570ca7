"""``TokenBucket`` (continuous refill from the clock) and the ``RateLimiter`` registry.

A limiter's keys that take the ``default`` limit (one per user, client, IP...) are not
``TokenBucket`` objects: they share one table, one entry per key, under one lock, so
100,000 keys cost what one dict of numbers costs and a call on any key costs the same.
"""

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


def _check_tokens(n: float, capacity: float) -> None:
    _validate.number(n, "n", low=0.0, low_open=True, high=capacity,
                     what=f"a number of tokens a bucket of capacity {capacity} can grant",
                     accepted="0 < n <= capacity")


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
            self._bind(storage.bucket_store(self))

    def _bind(self, store: BucketStore | None) -> None:
        """Keep the tokens in ``store`` (when there is one) instead of this object."""
        self._store = store
        if store is not None:
            self._take = store.take  # type: ignore[method-assign]
            self._wait_for = store.reserve  # type: ignore[method-assign]

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
        _check_tokens(n, self.capacity)

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


class _Keys:
    """The buckets of a limiter's default-limit keys: per key one ``complex`` holding
    (tokens, time of the last refill) in one dict, under one lock. The arithmetic is
    ``TokenBucket``'s, number for number; a key starts with a full bucket."""

    __slots__ = ("_lock", "_mono", "_states", "capacity", "rate")

    def __init__(self, rate: float, capacity: float, clock: Clock) -> None:
        self.rate = rate
        self.capacity = capacity
        self._mono = clock.monotonic
        self._states: dict[str, complex] = {}
        self._lock = threading.Lock()

    def take(self, key: str, n: float) -> bool:
        """``TokenBucket._take`` for ``key`` (the hot path of a keyed limiter)."""
        with self._lock:
            now = self._mono()
            state = self._states.get(key)
            if state is None:
                tokens = self.capacity
            else:
                tokens, last = state.real, state.imag
                if now > last:
                    tokens += (now - last) * self.rate
                    if tokens > self.capacity:  # noqa: PLR1730 - cheaper than min()
                        tokens = self.capacity
                else:
                    now = last
            granted = tokens >= n > 0
            if granted:
                tokens -= n
            self._states[key] = complex(tokens, now)
        return granted

    def _refill(self, key: str) -> float:
        """``key``'s tokens now (callers hold the lock)."""
        now = self._mono()
        state = self._states.get(key)
        if state is None:
            self._states[key] = complex(self.capacity, now)
            return self.capacity
        tokens, last = state.real, state.imag
        if now > last:
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            self._states[key] = complex(tokens, now)
        return tokens

    def reserve(self, key: str, n: float) -> float:
        """Take ``n`` tokens (returns 0.0) or the seconds until they are there."""
        with self._lock:
            tokens = self._refill(key)
            if tokens >= n:
                state = self._states[key]
                self._states[key] = complex(tokens - n, state.imag)
                return 0.0
            return (n - tokens) / self.rate

    def peek(self, key: str) -> float:
        """Tokens available now."""
        with self._lock:
            return self._refill(key)

    def forget(self, key: str) -> None:
        """Drop ``key`` (it gets a configured limit of its own)."""
        with self._lock:
            self._states.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._states

    def store(self, key: str) -> _KeyStore:
        """``key``'s entry as a ``BucketStore``, for a ``TokenBucket`` view of it."""
        return _KeyStore(self, key)


class _KeyStore:
    """One key of ``_Keys`` behind the ``BucketStore`` protocol."""

    __slots__ = ("_key", "_keys")

    def __init__(self, keys: _Keys, key: str) -> None:
        self._keys = keys
        self._key = key

    def take(self, n: float) -> bool:
        return self._keys.take(self._key, n)

    def reserve(self, n: float) -> float:
        return self._keys.reserve(self._key, n)

    def peek(self) -> float:
        return self._keys.peek(self._key)


class RateLimiter:
    """Named per-service buckets: ``limiter.configure("search", rate=50, capacity=100)``.

    Unknown names use ``default=(rate, capacity)`` when given, else raise ``KeyError``.
    Every bucket keeps its tokens in ``storage`` when one is given. Without a shared
    storage, the keys on the default limit live in one compact table (about 80 bytes
    per key); ``bucket(name)`` hands out a ``TokenBucket`` over that key's entry.
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
        self._keys: _Keys | None = None
        if default is not None:
            if not (isinstance(default, tuple) and len(default) == 2):
                raise TypeError(f"default={_validate.show(default)} is not a (rate, capacity) "
                                "pair. Pass e.g. default=(50, 100), or None.")
            rate = _positive("default rate", default[0])
            capacity = _positive("default capacity", default[1])
            probe = TokenBucket(rate, capacity, clock=self.clock, storage=self.storage)
            if probe._store is None:  # tokens kept in this process: the compact table
                self._keys = _Keys(rate, capacity, self.clock)
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
            if self._keys is not None:
                self._keys.forget(name)
        return bucket

    def bucket(self, name: str) -> TokenBucket:
        """The bucket of ``name`` (for a key on the default limit: a view of its entry)."""
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
                if self._keys is not None:
                    view = TokenBucket(rate, capacity, name=name, clock=self.clock)
                    view._bind(self._keys.store(name))
                    return view
                self._buckets[name] = TokenBucket(rate, capacity, name=name, clock=self.clock,
                                                  storage=self.storage)
            return self._buckets[name]

    __getitem__ = bucket

    def __contains__(self, name: object) -> bool:
        return name in self._buckets or (self._keys is not None and name in self._keys)

    def _take_key(self, name: str, n: float) -> bool:
        """Take ``n`` tokens of a key of the compact table, for a caller that would wait
        for them otherwise (so a refusal is no event)."""
        keys = self._keys
        if keys is None or name in self._buckets:
            return False
        _check_tokens(n, keys.capacity)
        granted = keys.take(name, n)
        if granted and _events.listening():
            emit(RATELIMIT_ACQUIRED, name, self.clock, tokens=n, waited=0.0)
        return granted

    def try_acquire(self, name: str, n: float = 1) -> bool:
        """``bucket(name).try_acquire(n)``."""
        keys = self._keys
        if keys is None or name in self._buckets:
            return self.bucket(name).try_acquire(n)
        if (n.__class__ is not int and n.__class__ is not float) or not 0 < n <= keys.capacity:
            _check_tokens(n, keys.capacity)  # refuses with its message (bool, str, NaN...)
        granted = keys.take(name, n)  # the hot path of a keyed limiter: _take_key, inlined
        if _events.listening():
            emit(RATELIMIT_ACQUIRED if granted else RATELIMIT_REJECTED, name, self.clock,
                 tokens=n, waited=0.0)
        return granted

    def acquire(self, name: str, n: float = 1, *, timeout: float | None = None) -> float:
        """``bucket(name).acquire(n, timeout=...)``."""
        if self._take_key(name, n):
            return 0.0
        return self.bucket(name).acquire(n, timeout=timeout)

    async def aacquire(self, name: str, n: float = 1, *, timeout: float | None = None) -> float:
        """``await bucket(name).aacquire(n, timeout=...)``."""
        if self._take_key(name, n):
            return 0.0
        return await self.bucket(name).aacquire(n, timeout=timeout)
