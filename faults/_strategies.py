"""Hypothesis strategies for fault plans, and the plan type a chaos run executes.

``fault_plans(families=[failpoints({...}), clock_skews()], max_faults=4, horizon=10.0)``
generates ``ChaosPlan``s: failpoint ``Fault``s plus ``Scheduled`` faults of other families
(clock, memory, cuda, chroma, network) applied at a virtual time, and undone after their
``duration`` param or when the run ends. A family is a pluggable generator of plan
entries (the ``Family`` protocol); each draws its switches once per plan, BUGGIFY-style
(a failpoint site is on or off for the whole plan, then fires by its trigger), so plans
explore combinations instead of averaging them away.

Shrinking goes toward fewer faults (list elements are deleted, sites switched off),
shorter durations (delays, skews, spikes and toxics shrink toward their minimum) and
later triggers (``nth``, ``after`` and scheduled times shrink toward the horizon,
``first`` and ``rate`` toward firing less), so a failing plan shrinks to its essence.
Families that need heavy libraries (torch, chromadb) import them only when applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hypothesis import strategies as st

from faults._plan import PLAN_SCHEMA_VERSION, Action, Fault, FaultPlan, Trigger, load_json
from pytest_resilience import _validate
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import History

if TYPE_CHECKING:
    from faults.network import FaultProxy

__all__ = [
    "NETWORK_KINDS",
    "ChaosPlan",
    "ChromaCorruptions",
    "ClockSkews",
    "CudaSpikes",
    "Failpoints",
    "Family",
    "MemoryPressures",
    "NetworkToxics",
    "PerRun",
    "Scheduled",
    "SubprocessFailures",
    "chroma_corruptions",
    "clock_skews",
    "cuda_spikes",
    "failpoints",
    "fault_plans",
    "network_toxics",
    "register_family",
    "subprocess_failures",
]

Draw = Callable[[st.SearchStrategy[Any]], Any]
_SCHEDULED_ACCEPTED = "data written by ChaosPlan.to_dict / to_json"


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A fault of a non-failpoint family, applied once virtual time reaches ``at``; a
    ``duration`` param (seconds) undoes it that much later, else the run's end does."""

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
        with _validate.parsing("data", data, "a scheduled fault", _SCHEDULED_ACCEPTED):
            params = data.get("params", {})
            if not isinstance(params, Mapping):
                raise TypeError(f"params={params!r} is not a mapping")
            return cls(_validate.text(data["family"], "family"),
                       _validate.text(data["kind"], "kind"),
                       _validate.seconds(data["at"], "at"), dict(params))

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
    def from_dict(cls, data: Mapping[str, Any], *,
                  allow_modules: Iterable[str] = ()) -> ChaosPlan:
        """Inverse of ``to_dict`` (a plain ``FaultPlan`` dict reads too).

        ``allow_modules`` as for ``FaultPlan.from_dict``: names resolve only in modules
        already imported or allowed.
        """
        base = FaultPlan.from_dict(data, allow_modules=allow_modules)
        with _validate.parsing("data", data, "a chaos plan", _SCHEDULED_ACCEPTED):
            scheduled, decisions = data.get("scheduled", []), data.get("decisions", [])
            if not isinstance(scheduled, list) or not isinstance(decisions, list):
                raise TypeError("scheduled and decisions must be JSON lists")
            return cls(
                base.faults,
                tuple(Scheduled.from_dict(s) for s in scheduled),
                tuple(_validate.fraction(d, "decisions", high_open=True) for d in decisions),
                base.seed,
            )

    @classmethod
    def from_json(cls, text: str, *, allow_modules: Iterable[str] = ()) -> ChaosPlan:
        """Inverse of ``to_json`` (``allow_modules`` as for ``from_dict``)."""
        return cls.from_dict(load_json(text, "a chaos plan"), allow_modules=allow_modules)

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
        the entry's ``duration`` has passed, or when the run ends."""
        ...


@runtime_checkable
class PerRun(Protocol):
    """A family that needs something in place for each plan's whole run (a simulated GPU,
    the test's proxy on the run's clock), whether or not the plan holds its entries."""

    def around(self, *, clock: VirtualClock,
               history: History | None) -> AbstractContextManager[Any]:
        """Entered before the plan's body, exited after it (before the next plan)."""
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


def _swarm_off(swarm: bool, draw: Draw) -> bool:
    """Whether a family is switched off for this plan (drawn once per plan)."""
    return swarm and not draw(st.booleans())


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
        if isinstance(sites, str | bytes) or not isinstance(sites, Iterable):
            raise TypeError(f"sites={_validate.show(sites)} is not a collection of failpoint "
                            "names. Pass failpoint names, or a mapping name -> actions.")
        table = dict(sites) if isinstance(sites, Mapping) else {
            name: (Action.raise_(),) for name in sites}
        for name in table:
            _validate.text(name, "sites", what="a failpoint name",
                           accepted="non-empty failpoint names such as 'db.write'")
        if not table:
            raise ValueError("sites={} names no failpoint. Pass failpoint names, or a mapping "
                             "name -> actions.")
        for name, actions in table.items():
            if not isinstance(actions, Iterable) or not actions or \
                    not all(isinstance(a, Action) for a in actions):
                raise TypeError(f"sites[{name!r}]={actions!r} is not a list of Actions. Pass "
                                "e.g. [Action.raise_(ConnectionError)].")
        self.max_delay = _validate.seconds(max_delay, "max_delay", accepted="seconds >= 0")
        self.sites: dict[str, tuple[Action, ...]] = {k: tuple(v) for k, v in table.items()}
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


class _ScheduledFamily:
    """A family of scheduled faults: switched on or off once per plan (``swarm``), then
    drawing entries from ``_entries(horizon)``, built once per horizon (building
    strategies costs more than drawing from them)."""

    def __init__(self, *, swarm: bool) -> None:
        self.swarm = swarm
        self._cache: dict[float, st.SearchStrategy[Any]] = {}

    def entries(self, draw: Draw, *, horizon: float, calls: int) -> st.SearchStrategy[Any] | None:
        """Switch the family on or off, then generate its entries within ``horizon``."""
        if _swarm_off(self.swarm, draw):
            return None
        if horizon not in self._cache:
            self._cache[horizon] = self._entries(horizon)
        return self._cache[horizon]

    def _entries(self, horizon: float) -> st.SearchStrategy[Any]:
        raise NotImplementedError


class ClockSkews(_ScheduledFamily):
    """The clock family: wall-clock skews (``VirtualClock.skew``) and forward jumps of
    both clocks (``advance``), applied at a virtual time. Magnitudes shrink toward 1 s."""

    name = "clock"

    def __init__(self, *, max_seconds: float = 3600.0, backwards: bool = True,
                 jumps: bool = True, swarm: bool = True) -> None:
        self.max_seconds = int(_validate.number(max_seconds, "max_seconds", low=1.0,
                                                high=1e12, accepted="seconds from 1 to 1e12"))
        self.backwards = backwards
        self.jumps = jumps
        super().__init__(swarm=swarm)

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


class MemoryPressures(_ScheduledFamily):
    """The host-memory family: from a virtual time on, psutil reports ``percent`` of memory
    used (``faults.memory.memory_pressure``, Linux). Percentages shrink toward ``low``."""

    name = "memory"

    def __init__(self, *, low: int = 50, high: int = 99, swarm: bool = True) -> None:
        low = _validate.count(low, "low", low=0, high=100, what="a percentage")
        high = _validate.count(high, "high", low=low, high=100, what="a percentage",
                               accepted=f"an integer from low ({low}) to 100")
        self.low = low
        self.high = high
        super().__init__(swarm=swarm)

    def _entries(self, horizon: float) -> st.SearchStrategy[Any]:
        return st.builds(
            lambda at, p: Scheduled("memory", "pressure", at, {"percent": float(p)}),
            _later_float(horizon), st.integers(self.low, self.high))

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Make psutil report the entry's percentage until the run ends."""
        from faults.memory import memory_pressure

        return memory_pressure(float(entry.params["percent"]), clock=clock, history=history)


class CudaSpikes(_ScheduledFamily):
    """The CUDA family: from a virtual time on, a simulated device holds ``size`` more bytes
    for ``duration`` seconds (``faults.cuda.cuda_spike``).

    Each plan runs on a fresh ``fake_gpu(devices, total)`` (NVML and torch.cuda answer
    from it) unless the test installed one already, which is then spiked instead. Sizes
    (whole MiB up to ``max_size``) shrink toward 1 MiB, durations toward 10 ms, devices
    toward 0.
    """

    name = "cuda"

    def __init__(self, *, devices: int = 1, total: int | str = "80GiB",
                 max_size: int | str | None = None, swarm: bool = True) -> None:
        from faults._fake_gpu import MAX_DEVICES, parse_bytes

        self.devices = _validate.count(devices, "devices", high=MAX_DEVICES,
                                       what="a device count")
        self.total = parse_bytes(total, "total")
        limit = self.total if max_size is None else parse_bytes(max_size, "max_size")
        if not 2**20 <= limit <= self.total:
            raise ValueError(f"max_size={max_size!r} is out of range. Pass a size from 1MiB "
                             f"to total ({self.total} bytes).")
        self.max_mib = limit // 2**20
        super().__init__(swarm=swarm)

    def _entries(self, horizon: float) -> st.SearchStrategy[Any]:
        return st.builds(
            lambda at, device, mib, duration: Scheduled(
                "cuda", "spike", at,
                {"device": device, "bytes": mib * 2**20, "duration": duration}),
            _later_float(horizon), st.integers(0, self.devices - 1),
            st.integers(1, self.max_mib), _durations(horizon))

    def around(self, *, clock: VirtualClock,
               history: History | None) -> AbstractContextManager[Any]:
        """A fresh simulated GPU for the run, unless one is installed already."""
        from faults._cuda import active_gpu, fake_gpu

        if active_gpu() is not None:
            return nullcontext()
        return fake_gpu(self.devices, self.total, clock=clock, history=history)

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Raise the device's usage until the spike is undone."""
        from faults.cuda import cuda_spike

        return cuda_spike(int(entry.params["device"]), int(entry.params["bytes"]),
                          clock=clock, history=history)


StorePath = Path | str | Callable[[], Path | str]


class ChromaCorruptions(_ScheduledFamily):
    """The Chroma family: at a virtual time, damage the closed store at ``store`` with
    ``faults.chroma.corrupt(store, mode, seed)``; every byte is put back when the run ends.

    ``store`` is the test's own store directory (or a function returning it, read when a
    corruption applies); nothing outside it is touched. Modes shrink toward the first of
    ``modes`` (default: every ``faults.chroma.MODES`` but ``CRASH_PRONE``, whose damage
    can kill the test's own process when it opens the store), seeds toward 0.
    """

    name = "chroma"

    def __init__(self, store: StorePath, *, modes: Sequence[str] | None = None,
                 swarm: bool = True) -> None:
        from faults.chroma import CRASH_PRONE, MODES

        if not (callable(store) or isinstance(store, Path | str)) or store == "":
            raise TypeError(f"store={store!r} is not a store directory. Pass the path given "
                            "to PersistentClient(path=...), or a function returning it.")
        chosen = (tuple(m for m in MODES if m not in CRASH_PRONE) if modes is None
                  else tuple(modes))
        unknown = [m for m in chosen if m not in MODES]
        if not chosen or unknown:
            raise ValueError(f"modes={modes!r} names no corruption mode or unknown ones "
                             f"({unknown}). Pass some of: {', '.join(MODES)}.")
        self.store = store
        self.modes = chosen
        super().__init__(swarm=swarm)

    def _entries(self, horizon: float) -> st.SearchStrategy[Any]:
        return st.builds(
            lambda at, mode, seed: Scheduled("chroma", "corrupt", at,
                                             {"mode": mode, "seed": seed}),
            _later_float(horizon), st.sampled_from(self.modes), st.integers(0, 2**16))

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Corrupt the store until the run ends."""
        store = Path(self.store() if callable(self.store) else self.store)
        return _corrupted(store, str(entry.params["mode"]), int(entry.params["seed"]),
                          at=entry.at, clock=clock, history=history)


@contextmanager
def _corrupted(store: Path, mode: str, seed: int, *, at: float, clock: VirtualClock,
               history: History | None) -> Iterator[None]:
    """``corrupt`` on the run's clock, undone at exit."""
    from faults.chroma import corrupt

    with corrupt(store, mode, seed, clock=clock, history=history):
        yield


#: Toxics the network family draws, with the parameter each takes (none: "") and its
#: least value, in ms (bytes for ``limit_data``); ``down`` takes the proxy down.
#: The proxy's loop moves the shared virtual clock when it is idle, so a proxy wait is
#: ordered against the test only while the test waits on the proxy: ``reset_peer``
#: resets at once ("after N ms" would race the test's I/O), and ``slow_close`` (a wait
#: after the test stopped listening) is drawn only when asked for in ``kinds``.
NETWORK_KINDS: dict[str, tuple[str, int]] = {
    "latency": ("ms", 1), "timeout": ("ms", 1), "reset_peer": ("", 0),
    "limit_data": ("nbytes", 0), "down": ("", 0), "slow_close": ("ms", 1),
}
_DEFAULT_NETWORK_KINDS = ("latency", "timeout", "reset_peer", "limit_data", "down")


class NetworkToxics(_ScheduledFamily):
    """The network family: from a virtual time on, for ``duration`` seconds, a toxic on the
    test's ``FaultProxy`` (``kinds`` of ``NETWORK_KINDS``, by default all but
    ``slow_close``; either direction) or the proxy down.

    ``proxy`` is the test's started proxy (or a function returning it, read once per
    plan). During each plan the proxy runs on the plan's clock, so toxics wait in virtual
    time (its loop moves the clock when idle); toxicity is 1 and latency has no jitter,
    so the proxy's own RNG decides nothing. Runs replay exactly when the body waits on
    the proxy (request, then response). Parameters shrink toward their minimum
    (``max_ms`` at most), durations toward 10 ms, the direction toward ``downstream``.
    """

    name = "network"

    def __init__(self, proxy: FaultProxy | Callable[[], FaultProxy], *,
                 kinds: Sequence[str] = _DEFAULT_NETWORK_KINDS, max_ms: int = 2000,
                 swarm: bool = True) -> None:
        if isinstance(kinds, str) or not isinstance(kinds, Iterable):
            raise TypeError(f"kinds={_validate.show(kinds)} is not a list of toxic kinds. "
                            f"Pass some of: {', '.join(NETWORK_KINDS)}.")
        given, kinds = kinds, tuple(kinds)
        unknown = [k for k in kinds if not isinstance(k, str) or k not in NETWORK_KINDS]
        if not kinds or unknown:
            raise ValueError(f"kinds={_validate.show(given)} names no toxic or unknown ones "
                             f"({_validate.show(unknown)}). "
                             f"Pass some of: {', '.join(NETWORK_KINDS)}.")
        max_ms = _validate.count(max_ms, "max_ms", what="valid")
        self.proxy = proxy
        self.kinds = tuple(kinds)
        self.max_ms = max_ms
        super().__init__(swarm=swarm)
        self._current: FaultProxy | None = None
        self._installed = 0

    def _entries(self, horizon: float) -> st.SearchStrategy[Any]:
        return st.one_of(*(self._kind(k, horizon) for k in self.kinds))

    def _kind(self, kind: str, horizon: float) -> st.SearchStrategy[Scheduled]:
        param, low = NETWORK_KINDS[kind]
        value = st.integers(low, self.max_ms) if param else st.just(0)

        def build(at: float, direction: str, amount: int, duration: float) -> Scheduled:
            params: dict[str, Any] = {"direction": direction, "duration": duration}
            if param:
                params[param] = amount
            return Scheduled("network", kind, at, params)

        return st.builds(build, _later_float(horizon),
                         st.sampled_from(("downstream", "upstream")), value,
                         _durations(horizon))

    def around(self, *, clock: VirtualClock,
               history: History | None) -> AbstractContextManager[Any]:
        """Put the proxy on the run's clock for the run."""
        return self._on_clock(clock)

    @contextmanager
    def _on_clock(self, clock: VirtualClock) -> Iterator[None]:
        proxy = self.proxy() if callable(self.proxy) else self.proxy
        saved = proxy.clock
        proxy.clock, self._current, self._installed = clock, proxy, 0
        try:
            yield
        finally:
            proxy.clock, self._current = saved, None

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Install the toxic (or take the proxy down) until the entry is undone."""
        from faults import network

        proxy = self._current
        if proxy is None:
            raise RuntimeError(f"{entry} applies outside a chaos run: the network family "
                               "needs its run (around()) to know the proxy.")
        if entry.kind == "down":
            return proxy.down()
        param, _ = NETWORK_KINDS[entry.kind]
        toxic = getattr(network, entry.kind)(*[entry.params[param]] if param else [])
        direction = entry.params["direction"]
        self._installed += 1
        return proxy.add_toxic(toxic, direction=direction,
                               name=f"chaos{self._installed}_{entry.kind}_{direction}")

# -- the subprocess family (issue 21) -----------------------------------------------------

class SubprocessFailures(_ScheduledFamily):
    """The subprocess family: from a virtual time on, for ``duration`` seconds, the
    commands matching ``command`` (the test's CLI: a program name or a ``re.Pattern``,
    never built by name) fail one way of ``kinds`` (``faults.subprocess.KINDS``): missing,
    hanging (timeouts pass on the plan's clock), exiting with a code and an error line on
    stderr, killed by a signal, or starting late. Codes shrink toward 1, signals toward
    SIGKILL, start delays toward 10 ms (at most ``max_start`` seconds), durations toward
    10 ms."""

    name = "subprocess"

    def __init__(self, command: Any, *, kinds: Sequence[str] | None = None,
                 max_start: float = 5.0, swarm: bool = True) -> None:
        from faults._subprocess import KINDS, check_command

        chosen = KINDS if kinds is None else tuple(kinds)
        unknown = [k for k in chosen if k not in KINDS]
        if not chosen or unknown:
            raise ValueError(f"kinds={kinds!r} names no behaviour or unknown ones "
                             f"({unknown}). Pass some of: {', '.join(KINDS)}.")
        if not max_start >= 0.01:
            raise ValueError(f"max_start={max_start!r} is too small. Pass seconds >= 0.01.")
        self.command = check_command(command)
        self.kinds = chosen
        self.max_start = float(max_start)
        super().__init__(swarm=swarm)

    def _entries(self, horizon: float) -> st.SearchStrategy[Any]:
        import signal

        kills = tuple(int(s) for s in (signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV,
                                       signal.SIGABRT))
        extra: dict[str, st.SearchStrategy[Any]] = {
            "exit": st.integers(1, 255), "killed": st.sampled_from(kills),
            "slow_start": _durations(self.max_start)}
        names = {"exit": "code", "killed": "signal", "slow_start": "seconds"}

        def kind(name: str) -> st.SearchStrategy[Scheduled]:
            def build(at: float, duration: float, value: Any) -> Scheduled:
                params: dict[str, Any] = {"duration": duration}
                if name in names:
                    params[names[name]] = value
                return Scheduled("subprocess", name, at, params)

            return st.builds(build, _later_float(horizon), _durations(horizon),
                             extra.get(name, st.just(None)))

        return st.one_of(*(kind(k) for k in self.kinds))

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Arm the behaviour on the test's command until the entry is undone."""
        from faults import subprocess as fsp

        params = entry.params
        on: dict[str, Any] = {"clock": clock, "history": history}
        if entry.kind == "exit":
            code = int(params["code"])
            return fsp.exits(self.command, code, stderr=f"error: injected exit {code}\n", **on)
        if entry.kind == "killed":
            return fsp.killed(self.command, int(params["signal"]), **on)
        if entry.kind == "slow_start":
            return fsp.slow_start(self.command, float(params["seconds"]), **on)
        return fsp.not_found(self.command, **on) if entry.kind == "not_found" \
            else fsp.hang(self.command, **on)


def _needs_target(what: str, builder: str) -> Callable[[], Family]:
    def refuse() -> Family:
        raise ValueError(f"family={what!r} needs its target from the test. Pass {builder} "
                         f"in families=[...] instead of the name {what!r}.")

    return refuse


_FAMILIES: dict[str, Callable[[], Family]] = {
    "clock": ClockSkews,
    "memory": MemoryPressures,
    "cuda": CudaSpikes,
    "chroma": _needs_target("chroma", "chroma_corruptions(store_path)"),
    "network": _needs_target("network", "network_toxics(proxy)"),
    "subprocess": _needs_target("subprocess", "subprocess_failures(command)"),
}


def register_family(name: str, factory: Callable[[], Family]) -> None:
    """Make ``fault_plans(families=[name])`` build a family with ``factory()``."""
    _FAMILIES[name] = factory


def family_named(name: str) -> Family:
    """The default family registered as ``name``."""
    try:
        return _FAMILIES[name]()
    except KeyError:
        raise ValueError(
            f"families=[..., {name!r}] names a family that is not registered. Pass a Family "
            f"object (failpoints({{...}}) needs its site names) or one of "
            f"{sorted(_FAMILIES)}."
        ) from None


def failpoints(sites: Mapping[str, Sequence[Action]] | Iterable[str], *,
               max_delay: float = 0.0, swarm: bool = True) -> Failpoints:
    """The failpoint family over ``sites`` (names, or a mapping name -> actions)."""
    return Failpoints(sites, max_delay=max_delay, swarm=swarm)


def clock_skews(*, max_seconds: float = 3600.0, backwards: bool = True,
                jumps: bool = True, swarm: bool = True) -> ClockSkews:
    """The clock family."""
    return ClockSkews(max_seconds=max_seconds, backwards=backwards, jumps=jumps, swarm=swarm)


def cuda_spikes(*, devices: int = 1, total: int | str = "80GiB",
                max_size: int | str | None = None, swarm: bool = True) -> CudaSpikes:
    """The CUDA family on a simulated GPU."""
    return CudaSpikes(devices=devices, total=total, max_size=max_size, swarm=swarm)


def chroma_corruptions(store: StorePath, *, modes: Sequence[str] | None = None,
                       swarm: bool = True) -> ChromaCorruptions:
    """The Chroma family over the test's closed store at ``store``."""
    return ChromaCorruptions(store, modes=modes, swarm=swarm)


def network_toxics(proxy: FaultProxy | Callable[[], FaultProxy], *,
                   kinds: Sequence[str] = _DEFAULT_NETWORK_KINDS, max_ms: int = 2000,
                   swarm: bool = True) -> NetworkToxics:
    """The network family over the test's ``FaultProxy``."""
    return NetworkToxics(proxy, kinds=kinds, max_ms=max_ms, swarm=swarm)


def subprocess_failures(command: Any, *, kinds: Sequence[str] | None = None,
                        max_start: float = 5.0, swarm: bool = True) -> SubprocessFailures:
    """The subprocess family over the test's command (a name or a ``re.Pattern``)."""
    return SubprocessFailures(command, kinds=kinds, max_start=max_start, swarm=swarm)


def resolve_families(families: Iterable[Family | str]) -> list[Family]:
    """Family objects for ``families`` (names resolve through the registry)."""
    if isinstance(families, str | bytes) or not isinstance(families, Iterable):
        raise TypeError(f"families={_validate.show(families)} is not a list of fault "
                        "families. Pass e.g. [failpoints({...}), 'clock'].")
    out = [family_named(f) if isinstance(f, str) else f for f in families]
    for family in out:
        if not isinstance(family, Family):
            raise TypeError(f"families=[..., {_validate.show(family)}] holds something that "
                            "is not a fault family. Pass failpoints(...), clock_skews(...) or "
                            "a registered family name.")
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
    max_faults = _validate.count(max_faults, "max_faults", low=0, what="valid")
    horizon = _validate.seconds(horizon, "horizon", positive=True, what="valid",
                                accepted="seconds > 0")
    calls = _validate.count(calls, "calls", what="valid")
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
