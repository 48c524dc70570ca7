"""``TriggerCounter``: a ``faults.Trigger`` applied to the calls that reach one injector.

Failpoints count calls per armed fault (``faults._registry``); the subprocess and disk
injectors count the calls that match them with this, so ``always``, ``nth``, ``first``,
``rate`` and ``after`` mean the same thing in every family.
"""

from __future__ import annotations

import random
import threading

from faults._plan import Trigger
from pytest_resilience import Clock

__all__ = ["TriggerCounter"]


class TriggerCounter:
    """Counts matching calls and says, by ``trigger``, which of them fire.

    ``rate`` draws from ``rng`` (``random.Random(seed)`` unless given); ``after`` counts
    clock seconds from ``start()``.
    """

    def __init__(self, trigger: Trigger | None, *, seed: int, rng: random.Random | None,
                 clock: Clock) -> None:
        if trigger is not None and not isinstance(trigger, Trigger):
            raise TypeError(f"trigger={trigger!r} is not a Trigger. Pass e.g. "
                            "Trigger.first(2) or Trigger.rate(0.5).")
        self.trigger = trigger if trigger is not None else Trigger.always()
        self.rng = rng if rng is not None else random.Random(seed)
        self.clock = clock
        self.calls = 0
        self.fired = 0
        self.started_at = clock.monotonic()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Count ``after`` seconds from now."""
        self.started_at = self.clock.monotonic()

    def decide(self) -> tuple[bool, int]:
        """Count one call; return whether it fires and its number (from 1)."""
        trigger = self.trigger
        with self._lock:
            self.calls += 1
            n = self.calls
            if trigger.kind == "always":
                fire = True
            elif trigger.kind == "nth":
                fire = n == trigger.value
            elif trigger.kind == "first":
                fire = n <= trigger.value
            elif trigger.kind == "rate":
                fire = self.rng.random() < trigger.value
            else:  # after
                fire = self.clock.monotonic() - self.started_at >= trigger.value
            if fire:
                self.fired += 1
        return fire, n
