"""The eviction checker: LRU order, capacity, and memory pressure answered by eviction.

It reads ``cache.load`` / ``cache.hit`` / ``cache.evict`` (of one cache, or all) and the
pressure readings: ``memory.pressure`` events, and ``fault.fired`` events of the memory
family that report a ``percent`` used (the ``memory_pressure`` fault), ranked with
``MemoryPressureMonitor``'s default thresholds. Readings in a row with no cache activity
between them count as one.
"""

from __future__ import annotations

from collections import OrderedDict

from pytest_resilience._events import Event
from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed, recorded
from pytest_resilience.kinds import (
    CACHE_EVICT,
    CACHE_HIT,
    CACHE_LOAD,
    FAULT_FIRED,
    MEMORY_PRESSURE,
)

__all__ = ["LEVELS", "check_eviction"]

NAME = "eviction"
#: Pressure levels, least to most severe.
LEVELS = ("normal", "warning", "critical", "emergency")
_RECENCY_CAUSES = ("lru", "pressure", "gpu")
#: Percent used at which each level above normal starts (MemoryPressureMonitor's defaults).
_PERCENT_LEVELS = ((95.0, "emergency"), (80.0, "critical"), (70.0, "warning"))


def _rank(level: object) -> int:
    text = str(getattr(level, "name", level)).lower()
    return LEVELS.index(text) if text in LEVELS else -1


def _is_reading(event: Event) -> bool:
    return event.kind == MEMORY_PRESSURE or (
        event.kind == FAULT_FIRED and event.attrs.get("family") == "memory"
        and isinstance(event.attrs.get("percent"), int | float))


def _level(event: Event) -> str:
    """The pressure level a reading reports."""
    if event.kind == MEMORY_PRESSURE:
        return str(getattr(event.attrs.get("level"), "name", event.attrs.get("level"))).lower()
    percent = float(event.attrs["percent"])
    return next((name for start, name in _PERCENT_LEVELS if percent >= start), "normal")


class _Pressure:
    """A pressure event at or above the threshold, and what was evicted after it."""

    def __init__(self, event: Event, resident: int) -> None:
        self.event = event
        self.level = _level(event)
        self.resident = resident
        self.freed = 0
        self.evictions = 0
        self.activity = 0


@recorded
def check_eviction(
    history: HistoryLike,
    *,
    source: str | None = None,
    lru: bool = True,
    capacity_bytes: int | None = None,
    pressure_level: str = "critical",
    within: float | None = None,
    target_bytes: int | None = None,
) -> Verdict:
    """Judge cache evictions in ``history``.

    ``lru``: an eviction caused by ``lru``, ``pressure`` or ``gpu`` takes the least
    recently loaded or hit key. ``capacity_bytes``: resident bytes never stay above it.
    A ``memory.pressure`` event at ``pressure_level`` or above, while something is
    resident, must be followed by an eviction (within ``within`` seconds if given, and
    before the next pressure event), and those evictions must free ``target_bytes`` (or
    everything resident, if less).
    """
    if _rank(pressure_level) < 0:
        raise ValueError(f"pressure_level={pressure_level!r} is not a level. Use one of {LEVELS}.")
    events = [
        e for e in select(history, "")
        if (e.kind.startswith("cache.") and (source is None or e.source == source))
        or _is_reading(e)
    ]
    walk = _Walk(lru=lru, threshold=_rank(pressure_level), within=within,
                 target_bytes=target_bytes)
    for i, event in enumerate(events):
        problem = walk.step(event)
        if problem is None and capacity_bytes is not None and event.kind.startswith("cache."):
            following = events[i + 1] if i + 1 < len(events) else None
            total = walk.total()
            if (following is None or following.kind != CACHE_EVICT) and total > capacity_bytes:
                problem = (f"Resident bytes reached {total}, above the capacity of "
                           f"{capacity_bytes}, and no eviction followed", [event])
        if problem is not None:
            return _fail(problem)
    problem = walk.close_pressure(None)
    if problem is not None:
        return _fail(problem)
    evictions = sum(1 for e in events if e.kind == CACHE_EVICT)
    return passed(NAME, f"{evictions} eviction(s) kept LRU order"
                  + ("" if capacity_bytes is None else " and the capacity")
                  + f"; every pressure event at {pressure_level!r} or above was answered.")


_Problem = tuple[str, list[Event]] | None


def _fail(problem: tuple[str, list[Event]]) -> Verdict:
    text, culprits = problem
    return failed(NAME, f"{text}. Events: " + "; ".join(describe(e) for e in culprits) + ".",
                  culprits)


class _Walk:
    """The cache's resident keys in recency order, and the pressure awaiting an answer."""

    def __init__(self, *, lru: bool, threshold: int, within: float | None,
                 target_bytes: int | None) -> None:
        self.lru = lru
        self.threshold = threshold
        self.within = within
        self.target_bytes = target_bytes
        self.resident: OrderedDict[tuple[str, str], tuple[int, Event]] = OrderedDict()
        self.pending: _Pressure | None = None

    def total(self) -> int:
        return sum(b for b, _ in self.resident.values())

    def step(self, event: Event) -> _Problem:
        pending = self.pending
        if self.within is not None and pending is not None and pending.evictions == 0 \
                and event.time - pending.event.time > self.within:
            return (f"Memory pressure was not answered by an eviction within "
                    f"{self.within:.6g}s", [pending.event, event])
        key = (event.source, str(event.attrs.get("key")))
        if _is_reading(event):
            if pending is not None and pending.activity == 0 and \
                    _rank(_level(event)) >= self.threshold:
                return None  # the same pressure read again before the cache did anything
            problem = self.close_pressure(event)
            self.pending = None
            total = self.total()
            if problem is None and _rank(_level(event)) >= self.threshold and total:
                self.pending = _Pressure(event, total)
            return problem
        if pending is not None:
            pending.activity += 1
        if event.kind == CACHE_LOAD:
            self.resident.pop(key, None)
            self.resident[key] = (int(event.attrs.get("bytes", 0) or 0), event)
        elif event.kind == CACHE_HIT and key in self.resident:
            self.resident.move_to_end(key)
        elif event.kind == CACHE_EVICT:
            return self.evict(event, key)
        return None

    def evict(self, event: Event, key: tuple[str, str]) -> _Problem:
        if key not in self.resident:
            return (f"Cache {event.source!r} evicted key {key[1]!r}, which was not resident",
                    [event])
        cause = str(event.attrs.get("cause", "lru"))
        if self.lru and cause in _RECENCY_CAUSES:
            oldest = next(k for k in self.resident if k[0] == event.source)
            if oldest != key:
                return (f"Cache {event.source!r} evicted {key[1]!r} ({cause}) while "
                        f"{oldest[1]!r} was less recently used",
                        [self.resident[oldest][1], self.resident[key][1], event])
        size, _ = self.resident.pop(key)
        if self.pending is not None:
            self.pending.evictions += 1
            self.pending.freed += size
        return None

    def close_pressure(self, now: Event | None) -> _Problem:
        pending = self.pending
        if pending is None:
            return None
        if pending.evictions == 0:
            return (f"Memory pressure {pending.level!r} with "
                    f"{pending.resident} bytes resident was not followed by any eviction",
                    [pending.event] + ([now] if now is not None else []))
        target = self.target_bytes
        if target is not None and pending.freed < min(target, pending.resident):
            return (f"Eviction after memory pressure freed {pending.freed} bytes, short of "
                    f"the {min(target, pending.resident)}-byte target", [pending.event])
        return None
