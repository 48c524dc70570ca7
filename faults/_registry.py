"""Named failpoints and their activation.

``failpoint(name)`` in code under test costs one dict check while nothing is armed.
``activate(plan)`` arms the plan's failpoints; stopping the activation disarms them.
"""

from __future__ import annotations

import functools
import inspect
import random
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from faults._plan import Action, Fault, FaultPlan, Trigger
from pytest_resilience import Clock, FaultInjected, History, arming, emit, validate
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED

__all__ = [
    "ActivePlan",
    "activate",
    "afailpoint",
    "armed_failpoints",
    "disarm_all",
    "failpoint",
    "inject",
    "instrument",
]

P = ParamSpec("P")
R = TypeVar("R")

# name -> faults armed there, in activation order. Replaced, never mutated in place, so the
# hot path reads it without a lock.
_armed: dict[str, tuple[_Armed, ...]] = {}
_armed_lock = threading.Lock()


class _Armed:
    """One fault of one activation, with its call counter."""

    __slots__ = ("calls", "fault", "fired", "index", "lock", "owner")

    def __init__(self, fault: Fault, index: int, owner: ActivePlan) -> None:
        self.fault = fault
        self.index = index
        self.owner = owner
        self.calls = 0
        self.fired = 0
        self.lock = threading.Lock()

    def decide(self) -> tuple[bool, int]:
        """Count this call and say whether the trigger fires."""
        trigger = self.fault.trigger
        with self.lock:
            self.calls += 1
            n = self.calls
            kind = trigger.kind
            if kind == "always":
                fire = True
            elif kind == "nth":
                fire = n == trigger.value
            elif kind == "first":
                fire = n <= trigger.value
            elif kind == "rate":
                fire = self.owner.rng.random() < trigger.value
            else:  # after
                fire = self.owner.clock.monotonic() - self.owner.started_at >= trigger.value
            if fire:
                self.fired += 1
        return fire, n

    def record(self, name: str, call: int) -> None:
        emit(
            FAULT_FIRED,
            f"failpoint:{name}",
            self.owner.clock,
            family="failpoint",
            history=self.owner.history,
            action=str(self.fault.action),
            trigger=str(self.fault.trigger),
            call=call,
            fault=self.index,
        )


def _exception(action: Action, name: str) -> BaseException:
    exc = action.exception
    if exc is None:
        return FaultInjected(f"fault injected at failpoint {name!r}", failpoint=name)
    return exc() if isinstance(exc, type) else exc


def failpoint(name: str, default: Any = None) -> Any:
    """A named injection point: returns ``default`` unless an armed fault fires here.

    Armed faults at ``name`` are tried in order: ``delay`` sleeps on the activation's
    clock and ``call`` runs its function, then the next fault is tried; ``raise`` raises
    and ``return`` makes this call return the action's value.
    """
    if not _armed:
        return default
    armed = _armed.get(name)
    if armed is None:
        return default
    for entry in armed:
        fire, call = entry.decide()
        if not fire:
            continue
        entry.record(name, call)
        action = entry.fault.action
        if action.kind == "raise":
            raise _exception(action, name)
        if action.kind == "return":
            return action.value
        if action.kind == "delay":
            entry.owner.clock.sleep(action.seconds)
        elif action.fn is not None:
            action.fn()
    return default


async def afailpoint(name: str, default: Any = None) -> Any:
    """``failpoint`` for coroutines: delays use ``clock.asleep``, calls are awaited."""
    if not _armed:
        return default
    armed = _armed.get(name)
    if armed is None:
        return default
    for entry in armed:
        fire, call = entry.decide()
        if not fire:
            continue
        entry.record(name, call)
        action = entry.fault.action
        if action.kind == "raise":
            raise _exception(action, name)
        if action.kind == "return":
            return action.value
        if action.kind == "delay":
            await entry.owner.clock.asleep(action.seconds)
        elif action.fn is not None:
            result = action.fn()
            if inspect.isawaitable(result):
                await result
    return default


_SKIP = object()


@overload
def instrument(
    name: str,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
@overload
def instrument(
    name: str, fn: Callable[P, R]
) -> Callable[P, R]: ...
def instrument(
    name: str, fn: Callable[P, R] | None = None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (sync or async) with failpoint ``name`` run before each call.

    A ``return`` action makes the call return the action's value without running the
    function.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):
            afunc = cast(Callable[P, Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                value = await afailpoint(name, _SKIP)
                if value is not _SKIP:
                    return value
                return await afunc(*args, **kwargs)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            value = failpoint(name, _SKIP)
            if value is not _SKIP:
                return cast(R, value)
            return func(*args, **kwargs)

        return wrapper

    return decorate if fn is None else decorate(fn)


class ActivePlan:
    """An armed ``FaultPlan``: a context manager (sync and async) that disarms on exit.

    ``calls(name)`` and ``fired(name)`` count what happened at each failpoint.
    """

    def __init__(
        self,
        plan: FaultPlan,
        *,
        clock: Clock | None = None,
        history: History | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(plan, FaultPlan):
            raise TypeError(f"plan={validate.show(plan)} is not a FaultPlan. Pass "
                            "FaultPlan([...]), or use activate(...) for faults.")
        if rng is not None and not isinstance(rng, random.Random):
            raise TypeError(f"rng={validate.show(rng)} is not a random.Random. Pass "
                            "random.Random(seed), or None to seed from the plan.")
        self.plan = plan
        self.clock: Clock = validate.clock(clock)
        self.history = validate.history(history)
        self.rng = rng if rng is not None else random.Random(plan.seed)
        self.started_at = 0.0
        self._entries = [_Armed(f, i, self) for i, f in enumerate(plan.faults)]
        self._active = False
        self._scoped = False  # armed by a FaultScope: a `with` block does not re-arm it

    @property
    def active(self) -> bool:
        """Whether the plan's failpoints are armed now."""
        return self._active

    def start(self) -> ActivePlan:
        """Arm every fault of the plan."""
        global _armed  # noqa: PLW0603 - replaced atomically, read lock-free
        if self._active:
            raise RuntimeError("This plan is already active; stop() it before starting again.")
        self.started_at = self.clock.monotonic()
        with _armed_lock:
            table = dict(_armed)
            for entry in self._entries:
                name = entry.fault.failpoint
                table[name] = (*table.get(name, ()), entry)
            _armed = table
            self._active = True
        arming.armed()
        emit(FAULT_ARMED, "faults", self.clock, history=self.history, family="failpoint",
             faults=len(self._entries), seed=self.plan.seed)
        return self

    def stop(self) -> None:
        """Disarm every fault of the plan; safe to call twice."""
        global _armed  # noqa: PLW0603
        with _armed_lock:
            if not self._active:
                return
            table: dict[str, tuple[_Armed, ...]] = {}
            for name, entries in _armed.items():
                kept = tuple(e for e in entries if e.owner is not self)
                if kept:
                    table[name] = kept
            _armed = table
            self._active = False
        emit(FAULT_DISARMED, "faults", self.clock, history=self.history, family="failpoint",
             fired=sum(e.fired for e in self._entries))

    def calls(self, name: str) -> int:
        """How many times armed failpoint ``name`` was reached."""
        return max((e.calls for e in self._entries if e.fault.failpoint == name), default=0)

    def fired(self, name: str | None = None) -> int:
        """How many times faults fired (at ``name``, or anywhere in the plan)."""
        return sum(e.fired for e in self._entries if name is None or e.fault.failpoint == name)

    def __enter__(self) -> ActivePlan:
        return self if self._active and self._scoped else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> ActivePlan:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "active" if self._active else "inactive"
        return f"<ActivePlan {state} seed={self.plan.seed} faults={len(self._entries)}>"


PlanLike = FaultPlan | Fault | Iterable[Fault]


def _as_plan(target: PlanLike, seed: int | None) -> FaultPlan:
    seed = validate.seed(seed)
    if isinstance(target, FaultPlan):
        if target.scheduled:
            raise ValueError(
                f"the plan holds {len(target.scheduled)} scheduled fault(s) of famil"
                f"{'y' if len(target.families()) == 1 else 'ies'} "
                f"{', '.join(target.families())}, which only a chaos run applies. Replay it "
                "on its chaos test (pytest TEST --resilience-replay=FILE, or "
                "pytest_resilience.chaos.replay(body, plan)), or arm plan.failpoint_plan()."
            )
        return target if seed is None else FaultPlan(target.faults, seed=seed)
    if isinstance(target, Fault):
        return FaultPlan([target], seed=seed or 0)
    if isinstance(target, str | bytes | Mapping) or not isinstance(target, Iterable):
        raise TypeError(f"target={validate.show(target)} is not a plan. Pass a FaultPlan, "
                        "a Fault or a list of Faults.")
    items = list(target)
    for item in items:
        if not isinstance(item, Fault):
            raise TypeError(f"target=[..., {validate.show(item)}] holds something that is "
                            "not a Fault. Pass a FaultPlan, a Fault or a list of Faults.")
    return FaultPlan(items, seed=seed or 0)


def activate(
    target: PlanLike,
    *,
    seed: int | None = None,
    clock: Clock | None = None,
    history: History | None = None,
    rng: random.Random | None = None,
) -> ActivePlan:
    """An ``ActivePlan`` for a plan, a fault or a list of faults, not yet started."""
    return ActivePlan(_as_plan(target, seed), clock=clock, history=history, rng=rng)


def inject(
    name: str,
    action: Action | None = None,
    *,
    trigger: Trigger | None = None,
    clock: Clock | None = None,
    history: History | None = None,
    seed: int = 0,
) -> ActivePlan:
    """Arm one failpoint for a ``with`` block: ``with inject("db.write", Action.raise_()):``.

    The action defaults to raising ``FaultInjected``; the trigger to ``always``.
    """
    validate.text(name, "name", what="a failpoint name",
                   accepted="a non-empty string such as 'db.write'")
    if action is not None and not isinstance(action, Action):
        raise TypeError(f"action={validate.show(action)} is not an Action. Pass "
                        "Action.raise_(...), returns(...), delay(...) or call(...), or None.")
    if trigger is not None and not isinstance(trigger, Trigger):
        raise TypeError(f"trigger={validate.show(trigger)} is not a Trigger. Pass "
                        "Trigger.always(), nth(n), first(n), rate(p) or after(s), or None.")
    fault = Fault(name, action or Action.raise_(), trigger or Trigger.always())
    return activate(fault, seed=seed, clock=clock, history=history)


def armed_failpoints() -> list[str]:
    """Names of the failpoints armed now, sorted."""
    return sorted(_armed)


def disarm_all() -> list[str]:
    """Disarm every active plan (a safety net for leaks); returns the names disarmed."""
    names = armed_failpoints()
    owners = {id(e.owner): e.owner for entries in _armed.values() for e in entries}
    for owner in owners.values():
        owner.stop()
    return names
