"""Clock faults: skew, jump and drift, on a ``VirtualClock`` or on the process's clocks.

With ``clock=`` a ``VirtualClock``, the fault moves that clock. Without it, the fault moves
the process's real clocks for third-party code:

- wall time (``time.time``, ``time.time_ns``, ``datetime.now``/``utcnow``/``today``,
  ``time.localtime``/``gmtime``/``strftime``) through time-machine's C-level patch, which
  also reaches early-bound ``time.time`` references;
- monotonic time (``time.monotonic``, ``time.monotonic_ns``; ``target="monotonic"`` or
  ``"both"``) by rebinding every reference to the real functions found with
  ``gc.get_referrers``: the ``time`` module, ``from time import monotonic`` aliases,
  default arguments (``cachetools.TTLCache(timer=time.monotonic)``), keyword defaults,
  ``functools.partial`` objects, instance attributes and slots.

The event loop's own clock (``loop.time()``) and the stdlib's waiting machinery
(``threading``, ``queue``, ``asyncio``, ...) stay on real time, so asyncio sleeps and
timeouts neither hang nor fire early. Everything is undone when the block ends.
"""

from __future__ import annotations

from faults._clock import (
    ClockFault,
    Target,
    drift,
    jump,
    skew,
)

__all__ = [
    "ClockFault",
    "Target",
    "drift",
    "jump",
    "skew",
]
