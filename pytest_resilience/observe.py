"""Observers: turn plain code (no import of this project) into the test's history.

Each is a context manager that undoes itself, restoring exactly what it replaced:

- ``watch_sleeps(clock)``: the block's sleeps advance the test's virtual clock at once
  and become ``sleep.called`` events (its time reads follow that clock too);
- ``watch_calls(target, *names)``: calls become ``call.start`` / ``call.end`` events;
- ``watch_cache(cache)``: hits, misses, loads and evictions (``cache.*``);
- ``watch_breaker(breaker, call=, rejected=)``: admitted and refused calls
  (``breaker.call`` / ``breaker.rejected``).

Events go to the active history (``history=`` overrides) on its clock (``clock=``
overrides; inside ``watch_sleeps`` the other observers use its clock). The checkers in
``pytest_resilience.checks`` judge what they record.
"""

from __future__ import annotations

from pytest_resilience._watch_breaker import BreakerWatch, watch_breaker
from pytest_resilience._watch_cache import CacheWatch, watch_cache
from pytest_resilience._watch_calls import CallWatch, watch_calls
from pytest_resilience._watch_sleeps import SleepWatch, watch_sleeps

__all__ = [
    "BreakerWatch",
    "CacheWatch",
    "CallWatch",
    "SleepWatch",
    "watch_breaker",
    "watch_cache",
    "watch_calls",
    "watch_sleeps",
]
