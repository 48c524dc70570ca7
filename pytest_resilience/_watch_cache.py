"""``watch_cache``: hits, misses, loads and evictions of a user's cache, read off its own
methods and the keys it holds.

Each watched operation (``get``/``__getitem__`` reads, ``put``/``set``/``__setitem__``
writes, ``pop``/``__delitem__``/``delete``/``invalidate``/``clear`` removals; whichever
the object has) compares the keys before and after it:

- a read that found the key it already held is ``cache.hit``; one that found nothing is
  ``cache.miss``; one that found a key it did not hold (a read-through cache) is a miss
  followed by ``cache.load``;
- a write is ``cache.load`` (the new entry is the most recent);
- every key that disappeared is ``cache.evict`` with a cause: ``manual`` for a removal the
  caller asked for; ``ttl`` when the entry's age on the test's clock reached the TTL, or
  when it vanished during a read or between operations of a TTL cache; ``pressure`` while
  a memory fault or pressure event is active; else the cache's policy (``lru`` unless
  the class says otherwise: cachetools' FIFO, LFU and RR caches).

A read is "found" when ``__getitem__`` returned (not ``KeyError``) or ``get`` returned
something other than its default (``None`` when ``get`` takes no default). Keys come from
``keys()``, iteration, or the one mapping the object stores (``keys=`` overrides).
Operations called by another watched operation (cachetools' ``__setitem__`` calling
``popitem``) are part of it, not events of their own.
"""

from __future__ import annotations

import contextvars
import inspect
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import Any

from pytest_resilience._clock import Clock
from pytest_resilience._events import History
from pytest_resilience._observing import Sink, short
from pytest_resilience._patching import intercept
from pytest_resilience.kinds import (
    CACHE_EVICT,
    CACHE_HIT,
    CACHE_LOAD,
    CACHE_MISS,
    FAULT_ARMED,
    FAULT_DISARMED,
    FAULT_FIRED,
    MEMORY_PRESSURE,
)

__all__ = ["CacheWatch", "watch_cache"]

READS = ("get", "__getitem__")
WRITES = ("put", "set", "__setitem__")
REMOVALS = ("pop", "__delitem__", "delete", "invalidate", "clear")
#: cachetools classes whose eviction policy is not least-recently-used.
_POLICIES = {"FIFOCache": "fifo", "LFUCache": "lfu", "RRCache": "random"}
_PRESSURE_PERCENT = 70.0  # the WARNING threshold of MemoryPressureMonitor's defaults
_NOT_FOUND = object()


class CacheWatch:
    """The context manager ``watch_cache`` returns."""

    def __init__(self, cache: object, *, name: str | None = None, ttl: float | None = None,
                 policy: str | None = None, size: Callable[[Any], int] | None = None,
                 keys: Callable[[Any], Iterable[Any]] | None = None,
                 reads: Sequence[str] = READS, writes: Sequence[str] = WRITES,
                 removals: Sequence[str] = REMOVALS, clock: Clock | None = None,
                 history: History | None = None) -> None:
        if isinstance(cache, dict | Mapping) and type(cache).__module__ == "builtins":
            raise TypeError(f"watch_cache({short(cache)}): a builtin {type(cache).__name__} "
                            "cannot be watched. Watch the cache object that holds it.")
        if ttl is None:
            found = getattr(cache, "ttl", None)
            ttl = found if isinstance(found, int | float) and not isinstance(found, bool) \
                else None
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)
                                or not math.isfinite(ttl) or ttl <= 0):
            raise ValueError(f"ttl={ttl!r} is not a time to live. Pass seconds > 0.")
        self.cache = cache
        self.name = name or type(cache).__name__
        self.ttl = None if ttl is None else float(ttl)
        self.policy = policy or next(
            (p for cls in type(cache).__mro__ for n, p in _POLICIES.items()
             if cls.__name__ == n), "lru")
        self._size = size or _sizer(cache)
        self._keys = keys or _key_reader(cache)
        self._ops = {**dict.fromkeys(removals, "remove"), **dict.fromkeys(writes, "write"),
                     **dict.fromkeys(reads, "read")}
        self._sink = Sink(clock, history)
        self._depth: contextvars.ContextVar[int] = contextvars.ContextVar(
            f"watch_cache_{id(self)}", default=0)
        self._resident: dict[Any, tuple[float, int]] = {}  # key -> (when stored, bytes)
        self._slots: dict[str, tuple[Any] | None] = {}  # where each read's default goes
        self._stack: ExitStack | None = None

    # -- entering and leaving ---------------------------------------------------------
    def __enter__(self) -> Any:
        if self._stack is not None:
            raise RuntimeError("this watch_cache block is already active; make a new one.")
        now = self._sink.now()
        self._resident = dict.fromkeys(self._snapshot(), (now, 0))
        with ExitStack() as stack:
            label = type(self.cache).__qualname__
            for method in self._ops:
                if callable(getattr(self.cache, method, None)):
                    patch = intercept(self.cache, method, self, label=f"{label}.{method}")
                    stack.callback(patch.restore)
            self._stack = stack.pop_all()
        return self.cache

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    # -- the interceptor --------------------------------------------------------------
    def run(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> Any:
        """One operation on the cache, with the events it implies."""
        if self._depth.get():
            return fn(*args, **kwargs)
        token = self._depth.set(1)
        try:
            return self._observe(label.rpartition(".")[2], fn, args, kwargs)
        finally:
            self._depth.reset(token)

    async def arun(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        """An ``async def`` operation: the awaited result is judged like a synchronous one."""
        if self._depth.get():
            return await fn(*args, **kwargs)
        token = self._depth.set(1)
        try:
            before = self._start()
            result = await fn(*args, **kwargs)
            self._finish(label.rpartition(".")[2], args, kwargs, before, result,
                         found=result is not None)
            return result
        finally:
            self._depth.reset(token)

    def _observe(self, method: str, fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
        before = self._start()
        kind = self._ops[method]
        if kind == "read" and method != "__getitem__":
            if method not in self._slots:
                self._slots[method] = _default_slot(fn)
            call_args, call_kwargs, default = _with_sentinel(self._slots[method], args, kwargs)
            result = fn(*call_args, **call_kwargs)
            found = result is not _NOT_FOUND and (default is not _NO_DEFAULT or
                                                  result is not None)
            self._finish(method, args, kwargs, before, result, found=found)
            return default if result is _NOT_FOUND else result
        try:
            result = fn(*args, **kwargs)
        except KeyError:
            if kind == "read":
                self._finish(method, args, kwargs, before, None, found=False)
            raise
        self._finish(method, args, kwargs, before, result, found=True)
        return result

    def _start(self) -> set[Any]:
        """The keys now; entries that vanished since the last operation are evicted."""
        keys = self._snapshot()
        for key in [k for k in self._resident if k not in keys]:
            self._evict(key, self._between_cause(key))
        return keys

    def _finish(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                before: set[Any], result: Any, *, found: bool) -> None:
        kind = self._ops[method]
        after = self._snapshot()
        key = args[0] if args else kwargs.get("key")
        now = self._sink.now()
        if kind == "read":
            if found and key in before:
                self._emit(CACHE_HIT, key, self._bytes(result))
            else:
                self._emit(CACHE_MISS, key, 0)
        if kind == "read" and key not in before and key in after:
            kind = "write"  # a read-through cache loaded the key
            value = result
        else:
            value = args[1] if len(args) > 1 else kwargs.get("value", result)
        if kind == "write":
            nbytes = self._bytes(value)
            self._emit(CACHE_LOAD, key, nbytes)
            self._resident.pop(key, None)
            self._resident[key] = (now, nbytes)
        for new in [k for k in after if k not in before and k not in self._resident]:
            self._emit(CACHE_LOAD, new, 0)  # stored as a side effect of the operation
            self._resident[new] = (now, 0)
        for old in [k for k in self._resident if k not in after]:
            self._evict(old, "manual" if kind == "remove" else self._cause(old, kind))

    # -- causes -----------------------------------------------------------------------
    def _expired(self, key: Any) -> bool:
        stored = self._resident.get(key)
        return self.ttl is not None and stored is not None and \
            self._sink.now() - stored[0] >= self.ttl - 1e-9

    def _cause(self, key: Any, kind: str) -> str:
        if self._expired(key) or kind == "read":  # a plain read drops only stale entries
            return "ttl"
        return "pressure" if self._pressure() else self.policy

    def _between_cause(self, key: Any) -> str:
        if self._expired(key) or self.ttl is not None:
            return "ttl"
        return "pressure" if self._pressure() else "manual"

    def _pressure(self) -> bool:
        """Whether a memory fault or a pressure level above normal is in effect."""
        history = self._sink.history()
        if history is None:
            return False
        for event in reversed(history.snapshot()):
            if event.kind == MEMORY_PRESSURE:
                return str(event.attrs.get("level", "normal")) != "normal"
            if event.kind in (FAULT_ARMED, FAULT_FIRED, FAULT_DISARMED) \
                    and event.attrs.get("family") == "memory":
                if event.kind == FAULT_DISARMED:
                    return False
                percent = event.attrs.get("percent")
                return isinstance(percent, int | float) and percent >= _PRESSURE_PERCENT
        return False

    # -- helpers ----------------------------------------------------------------------
    def _evict(self, key: Any, cause: str) -> None:
        _, nbytes = self._resident.pop(key, (0.0, 0))
        self._emit(CACHE_EVICT, key, nbytes, cause=cause)

    def _emit(self, kind: str, key: Any, nbytes: int, **extra: Any) -> None:
        self._sink.emit(kind, self.name, key=key, bytes=nbytes, **extra)

    def _bytes(self, value: Any) -> int:
        try:
            return int(self._size(value))
        except Exception:  # a size function that cannot measure this value
            return 0

    def _snapshot(self) -> set[Any]:
        token = self._depth.set(self._depth.get() + 1)  # the key reader's own calls
        try:
            return set(self._keys(self.cache))
        finally:
            self._depth.reset(token)

    def __repr__(self) -> str:
        state = "active" if self._stack is not None else "inactive"
        return f"<watch_cache {self.name!r} {state}>"


_NO_DEFAULT = object()


def _default_slot(fn: Callable[..., Any]) -> tuple[Any] | None:
    """``(declared default,)`` when ``get``'s second parameter is called ``default``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 or positional[1].name != "default":
        return None
    declared = positional[1].default
    return (None if declared is inspect.Parameter.empty else declared,)


def _with_sentinel(slot: tuple[Any] | None, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any], Any]:
    """``get``'s arguments with a private default, and the caller's default (or
    ``_NO_DEFAULT`` when ``get`` takes no ``default``)."""
    if slot is None:
        return args, kwargs, _NO_DEFAULT
    if len(args) > 1:
        return (args[0], _NOT_FOUND, *args[2:]), kwargs, args[1]
    return args, {**kwargs, "default": _NOT_FOUND}, kwargs.get("default", slot[0])


def _sizer(cache: object) -> Callable[[Any], int]:
    own = getattr(cache, "getsizeof", None)  # cachetools' measure of an entry
    return own if callable(own) else sys.getsizeof


def _key_reader(cache: object) -> Callable[[Any], Iterable[Any]]:
    if callable(getattr(type(cache), "__iter__", None)):
        return iter
    if callable(getattr(cache, "keys", None)):
        return lambda c: c.keys()
    stores = [k for k, v in getattr(cache, "__dict__", {}).items() if isinstance(v, Mapping)]
    if len(stores) == 1:
        attr = stores[0]
        return lambda c: list(getattr(c, attr).keys())
    raise TypeError(
        f"watch_cache cannot see which keys a {type(cache).__qualname__} holds: it has no "
        f"keys() or __iter__ and {len(stores)} mapping attributes. Pass keys=, e.g. "
        "keys=lambda cache: cache._store.")


def watch_cache(cache: object, *, name: str | None = None, ttl: float | None = None,
                policy: str | None = None, size: Callable[[Any], int] | None = None,
                keys: Callable[[Any], Iterable[Any]] | None = None,
                reads: Sequence[str] = READS, writes: Sequence[str] = WRITES,
                removals: Sequence[str] = REMOVALS, clock: Clock | None = None,
                history: History | None = None) -> CacheWatch:
    """Record ``cache``'s hits, misses, loads and evictions as ``cache.*`` events.

    ``name``: the events' source (default: the class name). ``ttl``: the entries' time to
    live (default: the cache's ``ttl`` attribute), so expiry is told apart from eviction.
    ``policy``: the cause of capacity evictions (default ``lru``; cachetools' FIFO, LFU and
    RR caches are recognised). ``size``: bytes of a value (default: the cache's
    ``getsizeof``, else ``sys.getsizeof``). ``keys``: how to list the keys held.
    ``reads``/``writes``/``removals``: the method names of each kind.
    """
    return CacheWatch(cache, name=name, ttl=ttl, policy=policy, size=size, keys=keys,
                      reads=reads, writes=writes, removals=removals, clock=clock,
                      history=history)
