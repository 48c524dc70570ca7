"""Hypothesis strategies for fault plans: ``fault_plans``, ``triggers`` and the generation
of each family's entries.

``fault_plans(families=[failpoints({...}), clock_skews()], max_faults=4, horizon=10.0)``
generates ``FaultPlan``s: failpoint ``Fault``s plus ``Scheduled`` faults of other families
(clock, memory, cuda, chroma, network) applied at a virtual time. Each family draws its
switches once per plan, BUGGIFY-style (a failpoint site, or a whole family, is on or off
for the plan), so plans explore combinations instead of averaging them away.

Shrinking goes toward fewer faults (list elements are deleted, sites switched off),
shorter durations (delays, skews, spikes and toxics shrink toward their minimum) and
later triggers (``nth``, ``after`` and scheduled times shrink toward the horizon,
``first`` and ``rate`` toward firing less), so a failing plan shrinks to its essence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from hypothesis import strategies as st

from faults._families import (
    NETWORK_KINDS,
    ChromaCorruptions,
    ClockSkews,
    CudaSpikes,
    Failpoints,
    Family,
    MemoryPressures,
    NetworkToxics,
    SubprocessFailures,
    resolve_families,
)
from faults._plan import Action, Fault, FaultPlan, Scheduled, Trigger
from pytest_resilience import _validate

__all__ = ["Generates", "fault_plans", "triggers"]

Draw = Callable[[st.SearchStrategy[Any]], Any]


@runtime_checkable
class Generates(Protocol):
    """A family of your own that generates its entries itself (built-in families are
    generated here): switch things on or off with ``draw`` once per plan, and return a
    strategy of single entries (``Fault`` or ``Scheduled``), or ``None`` when off."""

    def entries(self, draw: Draw, *, horizon: float,
                calls: int) -> st.SearchStrategy[Any] | None:
        """This plan's entry strategy, or ``None``."""
        ...


def _later_int(top: int) -> st.SearchStrategy[int]:
    """Integers in [1, top] that shrink toward ``top`` (a later trigger)."""
    return st.integers(0, top - 1).map(lambda k: top - k)


def _later_float(top: float) -> st.SearchStrategy[float]:
    """Times in [0, top] on a 1/100 grid that shrink toward ``top``."""
    steps = max(1, round(top * 100))
    return st.integers(0, steps).map(lambda k: round(top - k * top / steps, 6))


def _durations(horizon: float) -> st.SearchStrategy[float]:
    """Durations in [0.01, horizon] s on a 1/100 grid that shrink toward 0.01 s."""
    return st.integers(1, max(1, round(horizon * 100))).map(lambda k: k / 100)


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


# -- one entry generator per built-in family ----------------------------------------------
def _site(family: Failpoints, name: str, horizon: float,
          calls: int) -> st.SearchStrategy[Fault]:
    actions: st.SearchStrategy[Action] = st.sampled_from(family.sites[name])
    if family.max_delay > 0:
        ms = max(1, round(family.max_delay * 1000))
        delays = st.integers(1, ms).map(lambda k: Action.delay(k / 1000))
        actions = st.one_of(actions, delays)
    return st.builds(Fault, st.just(name), actions, triggers(horizon=horizon, calls=calls))


def _clock(family: ClockSkews, horizon: float) -> st.SearchStrategy[Scheduled]:
    magnitude = st.integers(1, family.max_seconds)
    target = family.target
    extra = {} if target is None else {"target": target}
    signed = st.tuples(magnitude, st.booleans()).map(
        lambda t: float(-t[0] if t[1] and family.backwards else t[0]))
    skews = st.builds(lambda at, s: Scheduled("clock", "skew", at, {"seconds": s, **extra}),
                      _later_float(horizon), signed)
    jumps = st.builds(lambda at, s: Scheduled("clock", "jump", at,
                                              {"seconds": float(s), **extra}),
                      _later_float(horizon), magnitude)
    if target == "monotonic":
        return jumps
    return st.one_of(skews, jumps) if family.jumps else skews


def _memory(family: MemoryPressures, horizon: float) -> st.SearchStrategy[Scheduled]:
    return st.builds(
        lambda at, p: Scheduled("memory", "pressure", at, {"percent": float(p)}),
        _later_float(horizon), st.integers(family.low, family.high))


def _cuda(family: CudaSpikes, horizon: float) -> st.SearchStrategy[Scheduled]:
    """Sizes (whole MiB) shrink toward 1 MiB, durations toward 10 ms, devices toward 0."""
    return st.builds(
        lambda at, device, mib, duration: Scheduled(
            "cuda", "spike", at,
            {"device": device, "bytes": mib * 2**20, "duration": duration}),
        _later_float(horizon), st.integers(0, family.devices - 1),
        st.integers(1, family.max_mib), _durations(horizon))


def _chroma(family: ChromaCorruptions, horizon: float) -> st.SearchStrategy[Scheduled]:
    """Modes shrink toward the first of ``modes``, seeds toward 0."""
    return st.builds(
        lambda at, mode, seed: Scheduled("chroma", "corrupt", at, {"mode": mode, "seed": seed}),
        _later_float(horizon), st.sampled_from(family.modes), st.integers(0, 2**16))


def _network(family: NetworkToxics, horizon: float) -> st.SearchStrategy[Scheduled]:
    """Parameters shrink toward their minimum (``max_ms`` at most), durations toward
    10 ms, the direction toward ``downstream``."""

    def kind(name: str) -> st.SearchStrategy[Scheduled]:
        param, low = NETWORK_KINDS[name]
        value = st.integers(low, family.max_ms) if param else st.just(0)

        def build(at: float, direction: str, amount: int, duration: float) -> Scheduled:
            params: dict[str, Any] = {"direction": direction, "duration": duration}
            if param:
                params[param] = amount
            return Scheduled("network", name, at, params)

        return st.builds(build, _later_float(horizon),
                         st.sampled_from(("downstream", "upstream")), value,
                         _durations(horizon))

    return st.one_of(*(kind(k) for k in family.kinds))


def _subprocess(family: SubprocessFailures, horizon: float) -> st.SearchStrategy[Scheduled]:
    """Codes shrink toward 1, signals toward SIGKILL, start delays toward 10 ms,
    durations toward 10 ms."""
    import signal

    kills = tuple(int(s) for s in (signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV,
                                   signal.SIGABRT))
    extra: dict[str, st.SearchStrategy[Any]] = {
        "exit": st.integers(1, 255), "killed": st.sampled_from(kills),
        "slow_start": _durations(family.max_start)}
    names = {"exit": "code", "killed": "signal", "slow_start": "seconds"}

    def kind(name: str) -> st.SearchStrategy[Scheduled]:
        def build(at: float, duration: float, value: Any) -> Scheduled:
            params: dict[str, Any] = {"duration": duration}
            if name in names:
                params[names[name]] = value
            return Scheduled("subprocess", name, at, params)

        return st.builds(build, _later_float(horizon), _durations(horizon),
                         extra.get(name, st.just(None)))

    return st.one_of(*(kind(k) for k in family.kinds))


_SCHEDULED: dict[type[Any], Callable[[Any, float], st.SearchStrategy[Scheduled]]] = {
    ClockSkews: _clock,
    MemoryPressures: _memory,
    CudaSpikes: _cuda,
    ChromaCorruptions: _chroma,
    NetworkToxics: _network,
    SubprocessFailures: _subprocess,
}


class _Options:
    """Per ``fault_plans`` strategy: each family's entry strategy, built once (building
    strategies costs more than drawing from them), switched on or off per plan."""

    def __init__(self, family: Family, horizon: float, calls: int) -> None:
        self.family = family
        self.horizon = horizon
        self.calls = calls
        self.swarm = bool(getattr(family, "swarm", True))
        self._cache: dict[Any, st.SearchStrategy[Any]] = {}
        self._build = _SCHEDULED.get(type(family))
        if not isinstance(family, Failpoints | Generates) and self._build is None:
            raise TypeError(f"{family!r} cannot generate entries: give it an entries() "
                            "method (faults.strategies.Generates).")

    def draw(self, draw: Draw) -> st.SearchStrategy[Any] | None:
        """Switch the family (or its sites) on or off, then its entry strategy."""
        family = self.family
        if isinstance(family, Failpoints):
            on = tuple(n for n in family.sites if not self.swarm or draw(st.booleans()))
            if not on:
                return None
            if on not in self._cache:
                self._cache[on] = st.one_of(
                    *(_site(family, name, self.horizon, self.calls) for name in on))
            return self._cache[on]
        if self._build is None:
            assert isinstance(family, Generates)
            return family.entries(draw, horizon=self.horizon, calls=self.calls)
        if self.swarm and not draw(st.booleans()):
            return None
        if None not in self._cache:
            self._cache[None] = self._build(family, self.horizon)
        return self._cache[None]


def fault_plans(
    families: Iterable[Family | str] = ("clock",),
    *,
    max_faults: int = 4,
    horizon: float = 10.0,
    calls: int = 10,
) -> st.SearchStrategy[FaultPlan]:
    """Plans of at most ``max_faults`` faults from ``families``.

    ``horizon``: virtual seconds in which ``after`` triggers and scheduled faults fall.
    ``calls``: the largest call number an ``nth``/``first`` trigger names.
    """
    max_faults = _validate.count(max_faults, "max_faults", low=0, what="valid")
    horizon = _validate.seconds(horizon, "horizon", positive=True, what="valid",
                                accepted="seconds > 0")
    calls = _validate.count(calls, "calls", what="valid")
    chosen = [_Options(f, horizon, calls) for f in resolve_families(families)]
    lists: dict[tuple[int, ...], tuple[list[Any], st.SearchStrategy[list[Any]]]] = {}

    @st.composite
    def plans(draw: Draw) -> FaultPlan:
        options = [s for f in chosen if (s := f.draw(draw)) is not None]
        if not options or max_faults == 0:
            return FaultPlan()
        key = tuple(id(o) for o in options)
        if key not in lists:  # options are cached per family, so ids are stable
            lists[key] = (options, st.lists(st.one_of(*options), max_size=max_faults))
        entries = draw(lists[key][1])
        return FaultPlan(
            [e for e in entries if isinstance(e, Fault)],
            scheduled=[e for e in entries if isinstance(e, Scheduled)],
        )

    return plans()
