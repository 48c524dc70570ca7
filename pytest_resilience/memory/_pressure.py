"""``MemoryPressureMonitor``: system memory levels, hysteresis, cooldown, cache eviction."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._events import emit
from pytest_resilience.kinds import MEMORY_PRESSURE
from pytest_resilience.memory._levels import PressureLevel, check_fraction, next_level
from pytest_resilience.memory._reading import (
    DEFAULT_CGROUP_ROOT,
    MemoryReading,
    read_system_memory,
)

__all__ = ["Evictable", "MemoryPressureMonitor", "PressureChange"]

DEFAULT_THRESHOLDS = (0.70, 0.80, 0.95)
DEFAULT_TARGETS: Mapping[PressureLevel, float] = {
    PressureLevel.WARNING: 0.15,
    PressureLevel.CRITICAL: 0.30,
    PressureLevel.EMERGENCY: 0.50,
}


@runtime_checkable
class Evictable(Protocol):
    """What a monitor needs from a cache (``ModelCache`` is one)."""

    name: str

    def tracked_bytes(self) -> int:
        """Bytes the cache holds now."""
        ...

    def evict_bytes(self, nbytes: int, *, cause: str) -> int:
        """Evict least-recently-used entries until ``nbytes`` are freed; returns bytes freed."""
        ...


@dataclass(frozen=True, slots=True)
class PressureChange:
    """What a callback receives when the level changes."""

    level: PressureLevel
    previous: PressureLevel
    reading: MemoryReading


Reader = Callable[[], "MemoryReading | None"]
Callback = Callable[[PressureChange], None]


class MemoryPressureMonitor:
    """Watches system memory and evicts from registered caches under pressure.

    Levels start at ``thresholds`` (fractions for WARNING, CRITICAL, EMERGENCY) and are
    left only ``hysteresis`` below them. At WARNING or above, ``check()`` evicts
    ``targets[level]`` of the caches' tracked bytes, lowest ``priority`` first, at most
    once per ``cooldown`` seconds of ``clock``. Without psutil (and without a cgroup
    limit) the monitor reports ``"unavailable"`` and never evicts.
    """

    def __init__(
        self,
        *,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        hysteresis: float = 0.05,
        cooldown: float = 30.0,
        targets: Mapping[PressureLevel, float] = DEFAULT_TARGETS,
        interval: float = 1.0,
        name: str = "memory",
        reader: Reader | None = None,
        cgroup_root: Path | None = DEFAULT_CGROUP_ROOT,
        clock: Clock | None = None,
    ) -> None:
        self.thresholds = _check_thresholds(thresholds)
        self.hysteresis = _validate.number(
            hysteresis, "hysteresis", low=0.0, high=self.thresholds[0], high_open=True,
            what="in range", accepted=f"a fraction >= 0 and below the first threshold "
            f"({self.thresholds[0]!r})")
        self.cooldown = _check_seconds(cooldown, "cooldown")
        self.interval = _check_seconds(interval, "interval")
        if self.interval == 0:
            raise ValueError("interval=0 would spin the monitor thread. Pass seconds > 0.")
        self.targets = _check_targets(targets)
        self.name = name
        self.clock: Clock = _validate.clock(clock)
        _validate.callable_or_none(reader, "reader", accepted="a function returning a "
                                   "MemoryReading (or None), or None for psutil")
        if cgroup_root is not None and not isinstance(cgroup_root, str | os.PathLike):
            raise TypeError(f"cgroup_root={_validate.show(cgroup_root)} is not a path. Pass "
                            "the cgroup v2 mount (default /sys/fs/cgroup), or None.")
        root = cgroup_root
        self._reader: Reader = reader if reader is not None else (
            lambda: read_system_memory(root))
        self._lock = threading.RLock()
        self._caches: list[tuple[int, int, Evictable]] = []
        self._callbacks: list[Callback] = []
        self._level = PressureLevel.NORMAL
        self._last: MemoryReading | None = None
        self._last_eviction: float | None = None
        self._evicted_bytes = 0
        self._evictions = 0
        self._errors = 0
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- registration ----------------------------------------------------------------
    def register(self, cache: Evictable, *, priority: int = 0) -> None:
        """Evict from ``cache`` under pressure; lower ``priority`` caches are evicted first."""
        if not isinstance(cache, Evictable):
            raise TypeError(
                f"cache={cache!r} cannot be evicted. Pass an object with name, "
                "tracked_bytes() and evict_bytes(nbytes, cause=...) (a ModelCache)."
            )
        with self._lock:
            self._caches.append((priority, len(self._caches), cache))
            self._caches.sort(key=lambda entry: (entry[0], entry[1]))

    def on_change(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(PressureChange)`` on every level change; returns a remover."""
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    # -- checking --------------------------------------------------------------------
    @property
    def level(self) -> PressureLevel:
        """The level after the last check."""
        return self._level

    def check(self) -> PressureLevel:
        """Read memory, update the level (emitting ``memory.pressure``) and evict if due."""
        reading = self._reader()
        with self._lock:
            self._last = reading
            if reading is None:
                return self._level
            previous = self._level
            level = next_level(previous, reading.fraction, self.thresholds, self.hysteresis)
            self._level = level
            callbacks = tuple(self._callbacks) if level != previous else ()
        if level != previous:
            emit(MEMORY_PRESSURE, self.name, self.clock, level=level.label,
                 previous=previous.label, percent=round(reading.fraction * 100, 2))
            change = PressureChange(level, previous, reading)
            for callback in callbacks:
                callback(change)
        if level > PressureLevel.NORMAL:
            self._maybe_evict(level)
        return level

    async def acheck(self) -> PressureLevel:
        """``check()`` in a worker thread (psutil reads block briefly)."""
        return await asyncio.to_thread(self.check)

    def _maybe_evict(self, level: PressureLevel) -> int:
        now = self.clock.monotonic()
        with self._lock:
            if self._last_eviction is not None and now - self._last_eviction < self.cooldown:
                return 0
            caches = [c for _, _, c in self._caches]
            fraction = self.targets.get(level, 0.0)
            goal = int(sum(c.tracked_bytes() for c in caches) * fraction)
            if goal <= 0:
                return 0
            self._last_eviction = now
        freed = 0
        for cache in caches:
            if freed >= goal:
                break
            freed += cache.evict_bytes(goal - freed, cause="pressure")
        with self._lock:
            self._evicted_bytes += freed
            self._evictions += 1
        return freed

    # -- background thread ---------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> MemoryPressureMonitor:
        """Start a daemon thread that calls ``check()`` every ``interval`` real seconds.

        An exception from a check is counted in ``status()`` (``thread_errors``,
        ``last_error``) and the thread goes on.
        """
        with self._lock:
            if self.running:
                raise RuntimeError(f"monitor {self.name!r} is already running. Call stop() first.")
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"resilience-{self.name}",
                                            daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as exc:  # a failing reader/cache/callback must not end the thread
                with self._lock:
                    self._errors += 1
                    self._last_error = repr(exc)
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and join it (bounded by ``timeout``); safe to call twice."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(
                    f"monitor {self.name!r} did not stop within timeout={timeout!r}s. A cache's "
                    "evict_bytes() or a callback is blocking; make it return."
                )
            self._thread = None

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after ``stop()``)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> MemoryPressureMonitor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- reporting -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Level, last reading, thresholds and eviction totals as plain builtins."""
        with self._lock:
            last = self._last
            return {
                "name": self.name,
                "available": last is not None,
                "level": self._level.label if last is not None else "unavailable",
                "reading": last.to_dict() if last is not None else None,
                "thresholds": {PressureLevel(i + 1).label: t
                               for i, t in enumerate(self.thresholds)},
                "hysteresis": self.hysteresis,
                "caches": [c.name for _, _, c in self._caches],
                "evictions": self._evictions,
                "evicted_bytes": self._evicted_bytes,
                "running": self.running,
                "thread_errors": self._errors,
                "last_error": self._last_error,
            }

    def status_json(self) -> str:
        """``status()`` as JSON."""
        return json.dumps(self.status())

    def __repr__(self) -> str:
        return f"MemoryPressureMonitor(name={self.name!r}, level={self._level.label!r})"


def _check_seconds(value: float, name: str) -> float:
    return _validate.seconds(value, name, what="a valid duration",
                             accepted="finite seconds >= 0")


def _check_thresholds(values: Sequence[float]) -> tuple[float, float, float]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"thresholds={_validate.show(values)} is not a sequence. Pass "
                        "(warning, critical, emergency), e.g. (0.70, 0.80, 0.95).")
    items = tuple(values)
    if len(items) != 3:
        raise ValueError(
            f"thresholds={_validate.show(values)} must hold three fractions. Pass (warning, "
            f"critical, "
            "emergency), e.g. (0.70, 0.80, 0.95)."
        )
    checked = tuple(check_fraction(v, "thresholds") for v in items)
    if not checked[0] < checked[1] < checked[2]:
        raise ValueError(
            f"thresholds={_validate.show(values)} are not increasing. Pass warning < critical "
            f"< emergency."
        )
    return checked[0], checked[1], checked[2]


def _check_targets(targets: Mapping[PressureLevel, float]) -> dict[PressureLevel, float]:
    if not isinstance(targets, Mapping):
        raise TypeError(f"targets={_validate.show(targets)} is not a mapping. Pass "
                        "{PressureLevel.WARNING: 0.15, ...} (the share of cache to free).")
    checked: dict[PressureLevel, float] = {}
    for key, value in targets.items():
        try:
            level = PressureLevel(key)
        except (ValueError, TypeError):
            raise ValueError(f"targets={_validate.show(targets)} has the key "
                             f"{_validate.show(key)}, which is not a PressureLevel. Pass "
                             "PressureLevel.WARNING, CRITICAL or EMERGENCY.") from None
        checked[level] = check_fraction(value, f"targets[{level.name}]")
    return checked
