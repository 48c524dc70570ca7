"""``ModelCache``: LRU + TTL model cache with byte accounting and pressure eviction."""

from __future__ import annotations

import inspect
import itertools
import threading
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from pytest_resilience import _events, _validate
from pytest_resilience._clock import Clock
from pytest_resilience._errors import ResilienceError
from pytest_resilience._events import emit
from pytest_resilience.kinds import CACHE_EVICT, CACHE_HIT, CACHE_LOAD, CACHE_MISS
from pytest_resilience.memory._sizing import measure_bytes, release_memory

__all__ = ["CacheStats", "ModelCache", "ModelLoadError"]

EVICT_CAUSES = ("lru", "ttl", "pressure", "gpu", "manual")
RELEASE_MIN_BYTES = 1 << 20  # evictions freeing less skip the GC pass and empty_cache()

Loader = Callable[[Hashable], Any]
EvictHook = Callable[[Hashable, Any], None]
Verifier = Callable[[Hashable, Any], bool]


class ModelLoadError(ResilienceError):
    """A loader returned something the verification probe rejected (a false "loaded")."""

    recoverable = True


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of a ``ModelCache``; ``evictions`` is keyed by cause."""

    hits: int
    misses: int
    loads: int
    entries: int
    bytes: int
    evictions: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Flight:
    """One thread's load of a key; other threads missing the same key wait for ``done``."""

    owner: int
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(slots=True)
class _Entry:
    value: Any
    nbytes: int
    expires: float


class ModelCache:
    """Models by key, least-recently-used first out, each with a TTL (600 s by default).

    A miss calls ``loader(key)``, measures the result (or takes ``size=``), runs the
    ``verify(key, value)`` probe (False raises ``ModelLoadError``) and stores it, evicting
    LRU entries beyond ``capacity_bytes``. Evicting calls ``on_evict(key, value)`` then
    drops the reference; once evictions free ``RELEASE_MIN_BYTES`` (1 MiB) or more, it
    also collects garbage and empties torch's CUDA cache. Thread-safe; no load holds the
    lock, and concurrent ``get`` misses on one key share a single load.
    """

    def __init__(
        self,
        *,
        capacity_bytes: int | None = None,
        ttl: float = 600.0,
        loader: Loader | None = None,
        on_evict: EvictHook | None = None,
        verify: Verifier | None = None,
        name: str = "models",
        clock: Clock | None = None,
    ) -> None:
        if capacity_bytes is not None:
            capacity_bytes = _validate.count(
                capacity_bytes, "capacity_bytes", what="a positive integer",
                accepted="a byte count, or None for no capacity limit")
        for hook, accepted in (("loader", "a function of the key, or None"),
                               ("on_evict", "a function of (key, value, cause), or None"),
                               ("verify", "a function of (key, value), or None")):
            _validate.callable_or_none(locals()[hook], hook, accepted=accepted)
        self.ttl = _check_ttl(ttl)
        self.capacity_bytes = capacity_bytes
        self.loader = loader
        self.on_evict = on_evict
        self.verify = verify
        self.name = name
        self.clock: Clock = _validate.clock(clock)
        self._mono = self.clock.monotonic
        self._lock = threading.RLock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._loading: dict[Hashable, _Flight] = {}
        self._bytes = 0
        self._misses = self._loads = 0
        # Hits are counted without the lock: one ticket each from an atomic counter;
        # stats() draws one too (``_hit_reads`` of them), and takes those off.
        self._hit_tickets = itertools.count()
        self._hit_reads = 0
        self._evictions: Counter[str] = Counter()

    # -- reading ---------------------------------------------------------------------
    def get(self, key: Hashable, loader: Loader | None = None, *, ttl: float | None = None,
            size: int | None = None) -> Any:
        """The cached value for ``key``, loading it on a miss (``loader`` or the default).

        The lock is not held while loading, so hits on other keys go on meanwhile;
        concurrent misses on one key wait for a single load (if it fails, the next
        waiter loads).
        """
        if ttl is not None or size is not None:
            _check_entry(ttl, size)
        entries = self._entries  # self._hit(key), inlined: the hot path
        entry = entries.get(key)
        if entry is not None and entry.expires > self._mono():
            try:
                entries.move_to_end(key)
            except KeyError:
                pass
            else:
                next(self._hit_tickets)
                if _events.listening():
                    emit(CACHE_HIT, self.name, self.clock, key=key, bytes=entry.nbytes)
                return entry.value
        return self._get_missed(key, loader, ttl, size)

    def _get_missed(self, key: Hashable, loader: Loader | None, ttl: float | None,
                    size: int | None) -> Any:
        """``get`` past the lock-free hit: a hit after all, a wait for another thread's
        load, or a load."""
        with self._lock:
            found, value = self._lookup(key)
            if found:
                return value
            load = self._loader(loader)
        me = threading.get_ident()
        while True:  # each pass waits for another thread's load of ``key`` to end
            with self._lock:
                entry = self._fresh(key)
                if entry is not None:
                    return entry.value
                flight = self._loading.get(key)
                if flight is None:
                    flight = self._loading[key] = _Flight(me)
                    break
            if flight.owner == me:
                raise RuntimeError(f"loader for key={key!r} asked the cache for {key!r} "
                                   "itself. A loader must not depend on its own key.")
            flight.done.wait()
        try:
            value = load(key)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()  # never awaited: close it so no warning leaks out
                raise TypeError(
                    f"loader for key={key!r} returned an awaitable. Use `await cache.aget(...)` "
                    "with async loaders."
                )
            with self._lock:
                entry = self._fresh(key)  # put() while loading: keep that value
                return entry.value if entry is not None else self._store(
                    key, value, ttl=ttl, size=size)
        finally:
            with self._lock:
                del self._loading[key]
            flight.done.set()

    async def aget(self, key: Hashable,
                   loader: Callable[[Hashable], Awaitable[Any] | Any] | None = None, *,
                   ttl: float | None = None, size: int | None = None) -> Any:
        """``get`` for async (or sync) loaders; the lock is not held while loading."""
        if ttl is not None or size is not None:
            _check_entry(ttl, size)
        entry = self._hit(key)
        if entry is not None:
            return entry.value
        with self._lock:
            found, value = self._lookup(key)
            if found:
                return value
            load = self._loader(loader)
        value = load(key)
        if inspect.isawaitable(value):
            value = await value
        with self._lock:
            entry = self._fresh(key)  # loaded concurrently: keep the first copy
            return entry.value if entry is not None else self._store(
                key, value, ttl=ttl, size=size)

    def put(self, key: Hashable, value: Any, *, ttl: float | None = None,
            size: int | None = None) -> Any:
        """Store ``value`` (replacing any entry for ``key``) and return it."""
        _check_entry(ttl, size)
        with self._lock:
            if key in self._entries:
                self._remove(key, cause="manual")
            return self._store(key, value, ttl=ttl, size=size)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            return entry is not None and entry.expires > self.clock.monotonic()

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    # -- eviction --------------------------------------------------------------------
    def evict(self, key: Hashable, *, cause: str = "manual") -> bool:
        """Remove ``key``; returns whether it was cached."""
        _check_cause(cause)
        with self._lock:
            if key not in self._entries:
                return False
            freed = self._remove(key, cause=cause)
        _release(freed)
        return True

    def evict_lru(self, *, cause: str = "lru") -> Hashable | None:
        """Remove the least recently used entry; returns its key (None when empty)."""
        _check_cause(cause)
        with self._lock:
            if not self._entries:
                return None
            key, freed = self._remove_oldest(cause)
        _release(freed)
        return key

    def evict_bytes(self, nbytes: int, *, cause: str = "pressure") -> int:
        """Remove LRU entries until at least ``nbytes`` are freed; returns bytes freed."""
        _check_cause(cause)
        freed = 0
        with self._lock:
            while freed < nbytes and self._entries:
                freed += self._remove_oldest(cause)[1]
        _release(freed)
        return freed

    def expire(self) -> int:
        """Remove every entry whose TTL has passed; returns how many."""
        now = self.clock.monotonic()
        with self._lock:
            # A snapshot: hits reorder the entries without the lock.
            stale = [k for k, e in list(self._entries.items()) if e.expires <= now]
            freed = sum(self._remove(key, cause="ttl") for key in stale)
        _release(freed)
        return len(stale)

    def clear(self) -> None:
        """Remove every entry (cause ``manual``)."""
        with self._lock:
            freed = sum(self._remove(key, cause="manual") for key in list(self._entries))
        _release(freed)

    # -- accounting ------------------------------------------------------------------
    def tracked_bytes(self) -> int:
        """Bytes held by the cached values."""
        return self._bytes

    def stats(self) -> CacheStats:
        """Hits, misses, loads, entries, bytes and evictions by cause."""
        with self._lock:
            hits = next(self._hit_tickets) - self._hit_reads
            self._hit_reads += 1
            return CacheStats(hits, self._misses, self._loads, len(self._entries),
                              self._bytes, dict(self._evictions))

    # -- internals -------------------------------------------------------------------
    def _loader(self, loader: Callable[[Hashable], Any] | None) -> Callable[[Hashable], Any]:
        chosen = loader if loader is not None else self.loader
        if chosen is None:
            raise TypeError("No loader: pass loader= to get() or to ModelCache(loader=...).")
        return chosen

    def _fresh(self, key: Hashable) -> _Entry | None:
        """``key``'s unexpired entry, marked most recently used; no stats, no events."""
        entry = self._entries.get(key)
        if entry is None or entry.expires <= self.clock.monotonic():
            return None
        self._entries.move_to_end(key)
        return entry

    def _hit(self, key: Hashable) -> _Entry | None:
        """The hot path, without the lock: a fresh entry, marked most recently used.

        Reading the dict, moving the key to the end and drawing a ticket are each one
        atomic step; a key evicted meanwhile is a miss (the locked path decides), and a
        concurrent ``put`` may leave this hit the value it replaced, as if it came first.
        The ``cache.hit`` event is built only for a listener.
        """
        entry = self._entries.get(key)
        if entry is None or entry.expires <= self._mono():
            return None
        try:
            self._entries.move_to_end(key)
        except KeyError:
            return None
        next(self._hit_tickets)
        if _events.listening():
            emit(CACHE_HIT, self.name, self.clock, key=key, bytes=entry.nbytes)
        return entry

    def _lookup(self, key: Hashable) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= self.clock.monotonic():
            _release(self._remove(key, cause="ttl"))
            entry = None
        if entry is None:
            self._misses += 1
            emit(CACHE_MISS, self.name, self.clock, key=key, bytes=0)
            return False, None
        self._entries.move_to_end(key)
        next(self._hit_tickets)
        if _events.listening():
            emit(CACHE_HIT, self.name, self.clock, key=key, bytes=entry.nbytes)
        return True, entry.value

    def _store(self, key: Hashable, value: Any, *, ttl: float | None, size: int | None) -> Any:
        if self.verify is not None and not self.verify(key, value):
            raise ModelLoadError(
                f"model {key!r} failed its load verification probe; it was not cached.",
                context={"cache": self.name, "key": key},
            )
        nbytes = measure_bytes(value) if size is None else int(size)
        lifetime = self.ttl if ttl is None else _check_ttl(ttl)
        freed = self._remove(key, cause="ttl") if key in self._entries else 0  # expired
        self._entries[key] = _Entry(value, nbytes, self.clock.monotonic() + lifetime)
        self._bytes += nbytes
        self._loads += 1
        emit(CACHE_LOAD, self.name, self.clock, key=key, bytes=nbytes)
        if self.capacity_bytes is not None:
            while self._bytes > self.capacity_bytes and len(self._entries) > 1:
                freed += self._remove_oldest("lru")[1]
        _release(freed)
        return value

    def _remove(self, key: Hashable, *, cause: str) -> int:
        return self._removed(key, self._entries.pop(key), cause)

    def _remove_oldest(self, cause: str) -> tuple[Hashable, int]:
        """Remove the least recently used entry: (its key, bytes freed). One ``popitem``:
        hits reorder the entries without the lock, so no iterator over them may stay open
        from one step to the next (only whole snapshots, ``list(...)``, are taken)."""
        key, entry = self._entries.popitem(last=False)
        return key, self._removed(key, entry, cause)

    def _removed(self, key: Hashable, entry: _Entry, cause: str) -> int:
        self._bytes -= entry.nbytes
        self._evictions[cause] += 1
        emit(CACHE_EVICT, self.name, self.clock, key=key, bytes=entry.nbytes, cause=cause)
        if self.on_evict is not None:
            self.on_evict(key, entry.value)
        return entry.nbytes

    def __repr__(self) -> str:
        return f"ModelCache(name={self.name!r}, entries={len(self)}, bytes={self._bytes})"


def _release(freed: int) -> None:
    """Collect garbage and empty CUDA's cache once evictions freed ``RELEASE_MIN_BYTES``.

    Smaller values go with their last reference; a full collection costs 30-80 ms, so
    running it per small eviction would dominate a busy cache.
    """
    if freed >= RELEASE_MIN_BYTES:
        release_memory()


def _check_ttl(ttl: float) -> float:
    return _validate.seconds(ttl, "ttl", positive=True, what="a valid lifetime", accepted=(
        "finite seconds > 0; every entry has a TTL (default 600)"))


def _check_entry(ttl: float | None, size: int | None) -> None:
    """Per-entry arguments, checked before anything is loaded."""
    if ttl is not None:
        _check_ttl(ttl)
    if size is not None:
        _validate.count(size, "size", low=0, what="a byte count",
                        accepted="an int >= 0, or None to measure the value")


def _check_cause(cause: str) -> None:
    if cause not in EVICT_CAUSES:
        raise ValueError(f"cause={cause!r} is not an eviction cause. Pass one of {EVICT_CAUSES}.")
