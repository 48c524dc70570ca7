"""Hypothesis strategies for fault plans, and the plan type a chaos run executes.

``fault_plans(families=[failpoints({...}), clock_skews()], max_faults=4, horizon=10.0)``
generates ``ChaosPlan``s: failpoint ``Fault``s plus ``Scheduled`` faults of other families
applied at a virtual time. A family is a pluggable generator of plan entries (the
``Family`` protocol); each draws its switches once per plan, BUGGIFY-style (a failpoint
site is on or off for the whole plan, then fires by its trigger), so plans explore
combinations instead of averaging them away.

Shrinking goes toward fewer faults (list elements are deleted, sites switched off),
shorter durations (delays and skews shrink toward their minimum) and later triggers
(``nth`` and ``after`` shrink toward the horizon, ``first`` and ``rate`` toward firing
less), so a failing plan shrinks to its essence.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hypothesis import strategies as st

from faults.plan import PLAN_SCHEMA_VERSION, Action, Fault, FaultPlan, Trigger
from pytest_resilience.clock import VirtualClock
from pytest_resilience.events import History

__all__ = [
    "ChaosPlan",
    "ClockSkews",
    "Failpoints",
    "Family",
    "MemoryPressures",
    "Scheduled",
    "clock_skews",
    "failpoints",
    "fault_plans",
    "register_family",
]

Draw = Callable[[st.SearchStrategy[Any]], Any]


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A fault of a non-failpoint family, applied once virtual time reaches ``at``."""

    family: str
    kind: str
    at: float
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins for JSON."""
        return {"family": self.family, "kind": self.kind, "at": self.at,
                "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scheduled:
        """Inverse of ``to_dict``."""
        return cls(str(data["family"]), str(data["kind"]), float(data["at"]),
                   dict(data.get("params", {})))

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.family}.{self.kind}({params}) at t={self.at:g}s"


@dataclass(frozen=True, slots=True)
class ChaosPlan:
    """What one chaos run executes: failpoint faults, scheduled faults, the random
    decisions the run drew (recorded, so a replay repeats them) and a seed."""

    faults: tuple[Fault, ...] = ()
    scheduled: tuple[Scheduled, ...] = ()
    decisions: tuple[float, ...] = ()
    seed: int = 0

    def failpoint_plan(self) -> FaultPlan:
        """The failpoint part as a ``FaultPlan``."""
        return FaultPlan(self.faults, seed=self.seed)

    def with_decisions(self, decisions: Iterable[float]) -> ChaosPlan:
        """A copy holding the recorded random decisions."""
        return ChaosPlan(self.faults, self.scheduled, tuple(decisions), self.seed)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins; the failpoint part reads as a ``FaultPlan`` too."""
        return {
            "version": PLAN_SCHEMA_VERSION,
            "seed": self.seed,
            "faults": [f.to_dict() for f in self.faults],
            "scheduled": [s.to_dict() for s in self.scheduled],
            "decisions": list(self.decisions),
        }

    def to_json(self, indent: int | None = None) -> str:
        """The plan as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChaosPlan:
        """Inverse of ``to_dict`` (a plain ``FaultPlan`` dict reads too)."""
        base = FaultPlan.from_dict(data)
        return cls(
            base.faults,
            tuple(Scheduled.from_dict(s) for s in data.get("scheduled", [])),
            tuple(float(d) for d in data.get("decisions", [])),
            base.seed,
        )

    @classmethod
    def from_json(cls, text: str) -> ChaosPlan:
        """Inverse of ``to_json``."""
        return cls.from_dict(json.loads(text))

    def __len__(self) -> int:
        return len(self.faults) + len(self.scheduled)

    def __str__(self) -> str:
        lines = [f"  {f}" for f in self.faults] + [f"  {s}" for s in self.scheduled]
        return "\n".join([f"ChaosPlan({len(self)} faults)", *lines])


@runtime_checkable
class Family(Protocol):
    """A pluggable generator of plan entries for one fault family."""

    name: str

    def entries(self, draw: Draw, *, horizon: float, calls: int) -> st.SearchStrategy[Any] | None:
        """Draw this plan's switches with ``draw``; return a strategy of single entries
        (``Fault`` or ``Scheduled``), or ``None`` when the family is off for this plan."""
        ...

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Apply a ``Scheduled`` entry of this family; a context manager is exited when
        the run ends."""
        ...


def _later_int(top: int) -> st.SearchStrategy[int]:
    """Integers in [1, top] that shrink toward ``top`` (a later trigger)."""
    return st.integers(0, top - 1).map(lambda k: top - k)


def _later_float(top: float) -> st.SearchStrategy[float]:
    """Times in [0, top] on a 1/100 grid that shrink toward ``top``."""
    steps = max(1, round(top * 100))
    return st.integers(0, steps).map(lambda k: round(top - k * top / steps, 6))


def triggers(*, horizon: float, calls: int) -> st.SearchStrategy[Trigger]:
    """Triggers that shrink toward firing once, late: ``nth`` first, then ``first``,
    ``after``, ``rate`` and ``always``."""
    return st.one_of(
        _later_int(calls).map(Trigger.nth),
        st.integers(1, calls).map(Trigger.first),
        _later_float(horizon).map(Trigger.after),
        st.integers(1, 100).map(lambda k: Trigger.rate(k / 100)),
        st.just(Trigger.always()),
    )


class Failpoints:
    """The failpoint family: sites by name, each with the actions it may take.

    Per plan each site is switched on or off once (``swarm``); ``max_delay`` adds
    ``delay`` actions whose seconds shrink toward 0.
    """

    name = "failpoints"

    def __init__(self, sites: Mapping[str, Sequence[Action]] | Iterable[str], *,
                 max_delay: float = 0.0, swarm: bool = True) -> None:
        table = dict(sites) if isinstance(sites, Mapping) else {
            name: (Action.raise_(),) for name in sites}
        if not table:
            raise ValueError("sites={} names no failpoint. Pass failpoint names, or a mapping "
                             "name -> actions.")
        for name, actions in table.items():
            if not actions or not all(isinstance(a, Action) for a in actions):
                raise TypeError(f"sites[{name!r}]={actions!r} is not a list of Actions. Pass "
                                "e.g. [Action.raise_(ConnectionError)].")
        if max_delay < 0:
            raise ValueError(f"max_delay={max_delay!r} is negative. Pass seconds >= 0.")
        self.sites: dict[str, tuple[Action, ...]] = {k: tuple(v) for k, v in table.items()}
        self.max_delay = float(max_delay)
        self.swarm = swarm
        self._cache: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {}

    def entries(self, draw: Draw, *, horizon: float, calls: int) -> st.SearchStrategy[Any] | None:
        """Switch each site on or off, then generate faults at the sites left on."""
        on = tuple(n for n in self.sites if not self.swarm or draw(st.booleans()))
        if not on:
            return None
        key = (on, horizon, calls)
        if key not in self._cache:  # built once: building strategies costs more than drawing
            self._cache[key] = st.one_of(*(self._site(name, horizon, calls) for name in on))
        return self._cache[key]

    def _site(self, name: str, horizon: float, calls: int) -> st.SearchStrategy[Fault]:
        actions: st.SearchStrategy[Action] = st.sampled_from(self.sites[name])
        if self.max_delay > 0:
            ms = max(1, round(self.max_delay * 1000))
            delays = st.integers(1, ms).map(lambda k: Action.delay(k / 1000))
            actions = st.one_of(actions, delays)
        return st.builds(Fault, st.just(name), actions, triggers(horizon=horizon, calls=calls))

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Failpoint faults are armed through the plan, never scheduled."""
        raise TypeError(f"{entry} is not a failpoint entry.")


class ClockSkews:
    """The clock family: wall-clock skews (``VirtualClock.skew``) and forward jumps of
    both clocks (``advance``), applied at a virtual time. Magnitudes shrink toward 1 s."""

    name = "clock"

    def __init__(self, *, max_seconds: float = 3600.0, backwards: bool = True,
                 jumps: bool = True, swarm: bool = True) -> None:
        if not max_seconds >= 1:
            raise ValueError(f"max_seconds={max_seconds!r} is too small. Pass seconds >= 1.")
        self.max_seconds = int(max_seconds)
        self.backwards = backwards
        self.jumps = jumps
        self.swarm = swarm
        self._cache: dict[float, st.SearchStrategy[Any]] = {}

    def entries(self, draw: Draw, *, horizon: float, calls: int) -> st.SearchStrategy[Any] | None:
        """Switch the family on or off, then generate skews (and jumps) at times that shrink
        toward the horizon."""
        if self.swarm and not draw(st.booleans()):
            return None
        if horizon not in self._cache:
            self._cache[horizon] = self._entries(horizon)
        return self._cache[horizon]

    def _entries(self, horizon: float) -> st.SearchStrategy[Any]:
        magnitude = st.integers(1, self.max_seconds)
        signed = st.tuples(magnitude, st.booleans()).map(
            lambda t: float(-t[0] if t[1] and self.backwards else t[0]))
        skews = st.builds(lambda at, s: Scheduled("clock", "skew", at, {"seconds": s}),
                          _later_float(horizon), signed)
        if not self.jumps:
            return skews
        jumps = st.builds(lambda at, s: Scheduled("clock", "jump", at, {"seconds": float(s)}),
                          _later_float(horizon), magnitude)
        return st.one_of(skews, jumps)

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Skew wall time (``skew``) or move both clocks forward (``jump``)."""
        from faults.clock import skew

        seconds = float(entry.params["seconds"])
        if entry.kind == "skew":
            return skew(seconds, target="wall", clock=clock, history=history)
        return skew(seconds, target="both", clock=clock, history=history)


class MemoryPressures:
    """The host-memory family: from a virtual time on, psutil reports ``percent`` of memory
    used (``faults.memory.memory_pressure``, Linux). Percentages shrink toward ``low``."""

    name = "memory"

    def __init__(self, *, low: int = 50, high: int = 99, swarm: bool = True) -> None:
        if not 0 <= low <= high <= 100:
            raise ValueError(f"low={low!r}, high={high!r} are not percentages with low <= "
                             "high. Pass integers in [0, 100].")
        self.low = low
        self.high = high
        self.swarm = swarm
        self._cache: dict[float, st.SearchStrategy[Any]] = {}

    def entries(self, draw: Draw, *, horizon: float, calls: int) -> st.SearchStrategy[Any] | None:
        """Switch the family on or off, then generate pressure steps."""
        if self.swarm and not draw(st.booleans()):
            return None
        if horizon not in self._cache:
            self._cache[horizon] = st.builds(
                lambda at, p: Scheduled("memory", "pressure", at, {"percent": float(p)}),
                _later_float(horizon), st.integers(self.low, self.high))
        return self._cache[horizon]

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Make psutil report the entry's percentage until the run ends."""
        from faults.memory import memory_pressure

        return memory_pressure(float(entry.params["percent"]), clock=clock, history=history)


_FAMILIES: dict[str, Callable[[], Family]] = {"clock": ClockSkews, "memory": MemoryPressures}


def register_family(name: str, factory: Callable[[], Family]) -> None:
    """Make ``fault_plans(families=[name])`` build a family with ``factory()``."""
    _FAMILIES[name] = factory


def family_named(name: str) -> Family:
    """The default family registered as ``name``."""
    try:
        return _FAMILIES[name]()
    except KeyError:
        raise ValueError(
            f"family={name!r} is not registered. Pass a Family object (failpoints({{...}}) "
            f"needs its site names) or one of {sorted(_FAMILIES)}."
        ) from None


def failpoints(sites: Mapping[str, Sequence[Action]] | Iterable[str], *,
               max_delay: float = 0.0, swarm: bool = True) -> Failpoints:
    """The failpoint family over ``sites`` (names, or a mapping name -> actions)."""
    return Failpoints(sites, max_delay=max_delay, swarm=swarm)


def clock_skews(*, max_seconds: float = 3600.0, backwards: bool = True,
                jumps: bool = True, swarm: bool = True) -> ClockSkews:
    """The clock family."""
    return ClockSkews(max_seconds=max_seconds, backwards=backwards, jumps=jumps, swarm=swarm)


def resolve_families(families: Iterable[Family | str]) -> list[Family]:
    """Family objects for ``families`` (names resolve through the registry)."""
    out = [family_named(f) if isinstance(f, str) else f for f in families]
    for family in out:
        if not isinstance(family, Family):
            raise TypeError(f"{family!r} is not a fault family. Pass failpoints(...), "
                            "clock_skews(...) or a registered family name.")
    return out


def fault_plans(
    families: Iterable[Family | str] = ("clock",),
    *,
    max_faults: int = 4,
    horizon: float = 10.0,
    calls: int = 10,
) -> st.SearchStrategy[ChaosPlan]:
    """Plans of at most ``max_faults`` faults from ``families``.

    ``horizon``: virtual seconds in which ``after`` triggers and scheduled faults fall.
    ``calls``: the largest call number an ``nth``/``first`` trigger names.
    """
    if isinstance(max_faults, bool) or not isinstance(max_faults, int) or max_faults < 0:
        raise ValueError(f"max_faults={max_faults!r} is not valid. Pass an integer >= 0.")
    if not horizon > 0:
        raise ValueError(f"horizon={horizon!r} is not valid. Pass seconds > 0.")
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        raise ValueError(f"calls={calls!r} is not valid. Pass an integer >= 1.")
    chosen = resolve_families(families)
    lists: dict[tuple[int, ...], tuple[list[Any], st.SearchStrategy[list[Any]]]] = {}

    @st.composite
    def plans(draw: Draw) -> ChaosPlan:
        options = [s for f in chosen
                   if (s := f.entries(draw, horizon=horizon, calls=calls)) is not None]
        if not options or max_faults == 0:
            return ChaosPlan()
        key = tuple(id(o) for o in options)
        if key not in lists:  # options are cached by their families, so ids are stable
            lists[key] = (options, st.lists(st.one_of(*options), max_size=max_faults))
        entries = draw(lists[key][1])
        return ChaosPlan(
            tuple(e for e in entries if isinstance(e, Fault)),
            tuple(sorted((e for e in entries if isinstance(e, Scheduled)), key=lambda s: s.at)),
        )

    return plans()
