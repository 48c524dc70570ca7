"""What the subprocess and disk injectors share: ``Injector`` (``start``/``stop`` as a
sync and async context manager) and ``TriggerCounter``, a ``faults.Trigger`` applied to
the calls that reach one injector.

Failpoints count calls per armed fault (``faults._registry``); the subprocess and disk
injectors count the calls that match them with ``TriggerCounter``, so ``always``,
``nth``, ``first``, ``rate`` and ``after`` mean the same thing in every family.
"""

from __future__ import annotations

import random
import threading
from typing import Self

from faults._plan import Trigger
from pytest_resilience import Clock, validate

__all__ = ["CountedInjector", "Injector", "TriggerCounter"]


class Injector:
    """An injector armed by ``start()`` and undone by ``stop()``; ``with`` and
    ``async with`` do both. ``label`` names it in events and its repr."""

    label: str

    def start(self) -> Self:
        """Arm the injector."""
        raise NotImplementedError

    def stop(self) -> None:
        """Undo it; safe to call twice."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


class TriggerCounter:
    """Counts matching calls and says, by ``trigger``, which of them fire.

    ``rate`` draws from ``rng`` (``random.Random(seed)`` unless given); ``after`` counts
    clock seconds from ``start()``.
    """

    def __init__(self, trigger: Trigger | None, *, seed: int, rng: random.Random | None,
                 clock: Clock) -> None:
        if trigger is not None and not isinstance(trigger, Trigger):
            raise TypeError(f"trigger={validate.show(trigger)} is not a Trigger. Pass e.g. "
                            "Trigger.first(2) or Trigger.rate(0.5).")
        validate.check(rng is None or isinstance(rng, random.Random), "rng", rng,
                       what="a random number generator",
                       accepted="a random.Random instance, or None to draw from seed",
                       kind=TypeError)
        self.trigger = trigger if trigger is not None else Trigger.always()
        self.rng = rng if rng is not None else random.Random(validate.seed(seed))
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


class CountedInjector(Injector):
    """An ``Injector`` whose matching calls a ``TriggerCounter`` counts and decides."""

    counter: TriggerCounter

    @property
    def calls(self) -> int:
        """Calls that matched while armed."""
        return self.counter.calls

    @property
    def fired(self) -> int:
        """Calls the injector acted on."""
        return self.counter.fired
