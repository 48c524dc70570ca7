"""The TTL checker: an entry is visible for exactly its time to live on the test's clock.

It reads ``cache.load`` / ``cache.hit`` / ``cache.miss`` / ``cache.evict`` (``watch_cache``
writes them), timed on the test's clock, which stands for true elapsed time: a monotonic
clock. An entry stored at t must be found until t + ``ttl`` and gone from then on:

- a hit after t + ``ttl`` is an entry visible past its TTL (a cache on the wall
  clock after the wall clock was stepped back, or while monotonic time jumped ahead);
- a miss, or an eviction with cause ``ttl``, before t + ``ttl`` of an entry that no other
  eviction removed is an entry expiring early (the wall clock stepped forward).

A store of the same key starts its time to live again; evictions with another cause
(``lru``, ``pressure``, ``manual``) end it without judgement. Readings within
``tolerance`` of the boundary pass either way (float rounding).
"""

from __future__ import annotations

import math

from pytest_resilience._events import Event
from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed, recorded
from pytest_resilience.kinds import CACHE_EVICT, CACHE_HIT, CACHE_LOAD, CACHE_MISS

__all__ = ["check_ttl"]

NAME = "ttl"


@recorded
def check_ttl(history: HistoryLike, *, ttl: float, source: str | None = None,
              tolerance: float = 1e-9) -> Verdict:
    """Judge that every cached entry (of ``source``, or of every cache) was visible for
    ``ttl`` seconds on the history's clock and no longer (see the module docstring)."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) \
            or ttl <= 0:
        raise ValueError(f"ttl={ttl!r} is not a time to live. Pass seconds > 0.")
    stored: dict[tuple[str, str], Event] = {}
    judged = 0
    for event in select(history, "cache.", source):
        key = (event.source, repr(event.attrs.get("key")))
        if event.kind == CACHE_LOAD:
            stored[key] = event
            continue
        load = stored.get(key)
        if load is None or event.kind not in (CACHE_HIT, CACHE_MISS, CACHE_EVICT):
            continue
        age = event.time - load.time
        judged += 1
        if event.kind == CACHE_HIT and age - tolerance >= ttl:
            return _fail(f"was still visible {age:.6g}s after it was stored, past its "
                         f"{ttl:.6g}s TTL", load, event)
        expired = event.kind == CACHE_MISS or event.attrs.get("cause") == "ttl"
        if event.kind != CACHE_HIT and expired and age + tolerance < ttl:
            return _fail(f"expired {age:.6g}s after it was stored, before its {ttl:.6g}s TTL",
                         load, event)
        if event.kind != CACHE_HIT:
            del stored[key]
    return passed(NAME, f"{judged} read(s) and eviction(s) of stored entries kept the "
                  f"{ttl:g}s TTL on the history's clock.")


def _fail(text: str, load: Event, event: Event) -> Verdict:
    return failed(NAME, f"Cache {event.source!r} entry {event.attrs.get('key')!r} {text}. "
                  f"Events: {describe(load)}; {describe(event)}.", [load, event])
