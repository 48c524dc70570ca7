"""``FaultScope``: the LIFO undo stack behind the ``faults`` fixture.

Everything entered through a scope is undone when the scope closes, in reverse order,
even when the test failed. Injectors of every family are context managers, so a scope
takes any of them with ``enter``. A scope reads like the ``faults`` module it stands in
for: ``scope.failpoint``, ``scope.Fault``, ``scope.network`` ... are the module's, and
``scope.inject(...)`` works as a call (armed until the scope closes) and as a ``with``
block (disarmed when the block ends).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any, TypeVar

from faults._plan import Action, Fault, Trigger
from faults._registry import ActivePlan, PlanLike, activate
from pytest_resilience import Clock, History, validate

__all__ = ["FaultScope"]

T = TypeVar("T")

#: ``faults.<name>`` submodules a scope hands out like the package does.
_FAMILY_MODULES = ("chroma", "clock", "cuda", "families", "memory", "network", "strategies",
                   "disk", "http", "subprocess")


class FaultScope:
    """Activate plans and enter injectors; ``close()`` undoes them all, last first."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        history: History | None = None,
    ) -> None:
        # Private: ``scope.clock`` is the faults.clock module, as on the package.
        self._clock = None if clock is None else validate.clock(clock)
        self._seed = validate.count(seed, "seed", low=-(2**63), what="a seed",
                                     accepted="an integer")
        self._history = validate.history(history)
        self._plans: list[ActivePlan] = []
        self._stack = ExitStack()
        self._closed = False

    def activate(self, target: PlanLike, *, seed: int | None = None,
                 rng: random.Random | None = None) -> ActivePlan:
        """Arm a plan, a fault or a list of faults until the scope closes.

        Random decisions draw from ``seed`` (the scope's seed, i.e. the test's, by default).
        """
        active = activate(target, seed=self._seed if seed is None else seed, clock=self._clock,
                          history=self._history, rng=rng)
        self._plans.append(self.enter(active))
        active._scoped = True
        return active

    def inject(self, name: str, action: Action | None = None, *,
               trigger: Trigger | None = None) -> ActivePlan:
        """Arm one failpoint until the scope closes, or until the end of the ``with`` block
        it is used in (raises ``FaultInjected`` by default)."""
        return self.activate(Fault(name, action or Action.raise_(), trigger or Trigger.always()))

    def enter(self, cm: AbstractContextManager[T]) -> T:
        """Enter any injector's context manager; it is exited when the scope closes."""
        if self._closed:
            raise RuntimeError("This FaultScope is closed; request a new `faults` fixture.")
        return self._stack.enter_context(cm)

    def callback(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` when the scope closes."""
        self._stack.callback(fn, *args, **kwargs)

    def fired(self) -> int:
        """Faults fired so far across every plan this scope activated."""
        return sum(p.fired() for p in self._plans)

    def close(self) -> None:
        """Undo everything, last first. Safe to call twice."""
        self._closed = True
        self._stack.close()

    def __getattr__(self, name: str) -> Any:
        """The ``faults`` module's public names and family modules (``faults.network``)."""
        if name.startswith("_"):
            raise AttributeError(name)
        import faults

        if name in faults.__all__:
            return getattr(faults, name)
        if name in _FAMILY_MODULES:
            return importlib.import_module(f"faults.{name}")
        raise AttributeError(
            f"the faults fixture has no attribute {name!r}: it offers the faults module's "
            f"names ({', '.join(faults.__all__)}) and its family modules "
            f"({', '.join(_FAMILY_MODULES)})."
        )

    def __enter__(self) -> FaultScope:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
