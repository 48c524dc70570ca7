"""Fault families: what a chaos plan's entries target and how each entry is applied.

A family is a small object with a ``name`` (the ``family`` of its ``Scheduled`` entries)
and ``apply(entry, clock=, history=)``, which applies one entry and returns what undoes
it (a context manager, exited after the entry's ``duration`` or when the run ends). A
family that needs something in place for a whole run (a simulated GPU, the test's proxy
on the run's clock) also has ``around(clock=, history=)`` (the ``PerRun`` protocol).

Nothing here imports Hypothesis: replaying a plan needs only its families. How each
family's entries are *generated* lives in ``faults.strategies``. A new family is one
class here (or in your code) plus ``register_family(name, factory)``; generating its
entries is one function in ``faults/_strategies.py`` (or an ``entries`` method on your
class). Families that need heavy libraries (torch, chromadb) import them only when they
apply an entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, final, runtime_checkable

from faults._plan import Action, Scheduled
from pytest_resilience import History, VirtualClock, _validate

if TYPE_CHECKING:
    from faults.network import FaultProxy

__all__ = [
    "NETWORK_KINDS",
    "ChromaCorruptions",
    "ClockSkews",
    "CudaSpikes",
    "Failpoints",
    "Family",
    "MemoryPressures",
    "NetworkToxics",
    "PerRun",
    "SubprocessFailures",
    "chroma_corruptions",
    "clock_skews",
    "cuda_spikes",
    "failpoints",
    "family_named",
    "memory_pressures",
    "network_toxics",
    "register_family",
    "resolve_families",
    "subprocess_failures",
]


@runtime_checkable
class Family(Protocol):
    """A fault family: its ``name`` and how one of its ``Scheduled`` entries is applied."""

    name: str

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Apply ``entry``; a context manager returned is exited when the entry's
        ``duration`` has passed, or when the run ends."""
        ...


@runtime_checkable
class PerRun(Protocol):
    """A family that needs something in place for each plan's whole run (a simulated GPU,
    the test's proxy on the run's clock), whether or not the plan holds its entries."""

    def around(self, *, clock: VirtualClock,
               history: History | None) -> AbstractContextManager[Any]:
        """Entered before the plan's body, exited after it (before the next plan)."""
        ...


@final
class Failpoints:
    """The failpoint family: sites by name, each with the actions it may take.

    Its entries are ``Fault``s, armed through the plan (never scheduled). Per plan each
    site is switched on or off once (``swarm``); ``max_delay`` adds ``delay`` actions.
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
                raise TypeError(f"sites[{name!r}]={_validate.show(actions)} is not a list of "
                                "Actions. Pass e.g. [Action.raise_(ConnectionError)].")
        self.max_delay = _validate.seconds(max_delay, "max_delay", accepted="seconds >= 0")
        self.sites: dict[str, tuple[Action, ...]] = {k: tuple(v) for k, v in table.items()}
        self.swarm = swarm

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Failpoint faults are armed through the plan, never scheduled."""
        raise TypeError(f"{entry} is not a failpoint entry.")


ClockTarget = Literal["wall", "monotonic", "both"]
_CLOCK_TARGETS = ("wall", "monotonic", "both")


@final
class ClockSkews:
    """The clock family: wall-clock steps (``skew``, either way) and forward jumps
    (``jump``), applied at a virtual time.

    Always on the run's ``VirtualClock`` (``skew`` steps its wall time, ``jump`` moves
    both of its clocks). With ``target`` the process's own clocks move too, through
    ``faults.clock`` (time-machine for wall time, rebinding for monotonic time), so code
    that reads ``time.time()`` or ``time.monotonic()`` sees the fault: ``"wall"`` (steps
    and jumps of wall time), ``"monotonic"`` (jumps of monotonic time only: it never goes
    back) or ``"both"``. Process-clock entries stay until the run ends.
    """

    name = "clock"

    def __init__(self, *, max_seconds: float = 3600.0, backwards: bool = True,
                 jumps: bool = True, target: ClockTarget | None = None,
                 swarm: bool = True) -> None:
        max_seconds = _validate.number(max_seconds, "max_seconds", low=1.0, high=1e12,
                                       accepted="seconds from 1 to 1e12")
        if target is not None and target not in _CLOCK_TARGETS:
            raise ValueError(f"target={target!r} is not a clock. Pass 'wall', 'monotonic', "
                             "'both', or None for the run's virtual clock only.")
        if target == "monotonic" and not jumps:
            raise ValueError("target='monotonic' with jumps=False leaves nothing to draw: "
                             "monotonic time only jumps forward. Pass jumps=True.")
        self.max_seconds = int(max_seconds)
        self.backwards = backwards
        self.jumps = jumps
        self.target = target
        self.swarm = swarm

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Step wall time (``skew``) or move clocks forward (``jump``), on the run's clock
        and, when the entry names a ``target``, on the process's clocks."""
        from faults.clock import skew

        seconds = float(entry.params["seconds"])
        process = entry.params.get("target")
        stack = ExitStack()
        try:
            if entry.kind == "skew":
                stack.enter_context(skew(seconds, target="wall", clock=clock, history=history))
            else:
                stack.enter_context(skew(seconds, target="both", clock=clock, history=history))
            if process is not None:
                moved: ClockTarget = "wall" if entry.kind == "skew" else _clock_target(process)
                stack.enter_context(skew(seconds, target=moved, history=history))
        except BaseException:
            stack.close()
            raise
        return stack


def _clock_target(value: object) -> ClockTarget:
    for target in ("wall", "monotonic", "both"):
        if value == target:
            return target
    raise ValueError(f"target={value!r} in a clock entry is not a clock. A plan's clock "
                     "entries name 'wall', 'monotonic' or 'both'.")


@final
class MemoryPressures:
    """The host-memory family: from a virtual time on, psutil reports ``percent`` of memory
    used (``faults.memory.memory_pressure``, Linux), between ``low`` and ``high``."""

    name = "memory"

    def __init__(self, *, low: int = 50, high: int = 99, swarm: bool = True) -> None:
        low = _validate.count(low, "low", low=0, high=100, what="a percentage")
        high = _validate.count(high, "high", low=low, high=100, what="a percentage",
                               accepted=f"an integer from low ({low}) to 100")
        self.low = low
        self.high = high
        self.swarm = swarm

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Make psutil report the entry's percentage until the run ends."""
        from faults.memory import memory_pressure

        return memory_pressure(float(entry.params["percent"]), clock=clock, history=history)


@final
class CudaSpikes:
    """The CUDA family: from a virtual time on, a simulated device holds ``bytes`` more
    for ``duration`` seconds (``faults.cuda.cuda_spike``).

    Each plan runs on a fresh ``fake_gpu(devices, total)`` (NVML and torch.cuda answer
    from it) unless the test installed one already, which is then spiked instead.
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
        self.swarm = swarm

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


@final
class ChromaCorruptions:
    """The Chroma family: at a virtual time, damage the closed store at ``store`` with
    ``faults.chroma.corrupt(store, mode, seed)``; every byte is put back when the run ends.

    ``store`` is the test's own store directory (or a function returning it, read when a
    corruption applies); nothing outside it is touched, and events name it
    ``chroma:<directory name>``, never by its path. ``modes`` default to every
    ``faults.chroma.MODES`` but ``CRASH_PRONE`` (damage that can kill the test's own
    process when it opens the store).
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
        self.swarm = swarm

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Corrupt the store until the run ends."""
        from faults.chroma import corrupt

        store = Path(self.store() if callable(self.store) else self.store)
        return corrupt(store, str(entry.params["mode"]), int(entry.params["seed"]),
                       clock=clock, history=history)


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
DEFAULT_NETWORK_KINDS = ("latency", "timeout", "reset_peer", "limit_data", "down")


@final
class NetworkToxics:
    """The network family: from a virtual time on, for ``duration`` seconds, a toxic on the
    test's ``FaultProxy`` (``kinds`` of ``NETWORK_KINDS``, by default all but
    ``slow_close``; either direction) or the proxy down.

    ``proxy`` is the test's started proxy (or a function returning it, read once per
    plan). During each plan the proxy runs on the plan's clock, so toxics wait in virtual
    time (its loop moves the clock when idle); toxicity is 1 and latency has no jitter,
    so the proxy's own RNG decides nothing. Runs replay exactly when the body waits on
    the proxy (request, then response).
    """

    name = "network"

    def __init__(self, proxy: FaultProxy | Callable[[], FaultProxy], *,
                 kinds: Sequence[str] = DEFAULT_NETWORK_KINDS, max_ms: int = 2000,
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
        self.swarm = swarm
        self._current: FaultProxy | None = None
        self._installed = 0

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


@final
class SubprocessFailures:
    """The subprocess family: from a virtual time on, for ``duration`` seconds, the
    commands matching ``command`` (the test's CLI: a program name or a ``re.Pattern``,
    never built by name) fail one way of ``kinds`` (``faults.subprocess.KINDS``): missing,
    hanging (timeouts pass on the plan's clock), exiting with a code and an error line on
    stderr, killed by a signal, or starting late (at most ``max_start`` seconds)."""

    name = "subprocess"

    def __init__(self, command: Any, *, kinds: Sequence[str] | None = None,
                 max_start: float = 5.0, swarm: bool = True) -> None:
        from faults._subprocess import KINDS, check_command

        if kinds is not None and (isinstance(kinds, str) or not isinstance(kinds, Iterable)):
            raise TypeError(f"kinds={_validate.show(kinds)} is not a list of behaviours. "
                            f"Pass some of: {', '.join(KINDS)}.")
        chosen = KINDS if kinds is None else tuple(kinds)
        unknown = [k for k in chosen if k not in KINDS]
        if not chosen or unknown:
            raise ValueError(f"kinds={_validate.show(kinds)} names no behaviour or unknown "
                             f"ones ({_validate.show(unknown)}). Pass some of: "
                             f"{', '.join(KINDS)}.")
        self.max_start = _validate.number(max_start, "max_start", low=0.01, high=1e6,
                                          accepted="seconds from 0.01 to 1e6")
        self.command = check_command(command)
        self.kinds = chosen
        self.swarm = swarm

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
    """Make the family name ``name`` (in ``families=[...]``, and in a replayed plan's
    scheduled entries) build a family with ``factory()``."""
    if not isinstance(name, str) or not name or not callable(factory):
        raise TypeError(f"register_family({name!r}, {factory!r}): pass a non-empty name and "
                        "a function of no arguments returning the family.")
    _FAMILIES[name] = factory


def family_named(name: str) -> Family:
    """The default family registered as ``name``."""
    try:
        factory = _FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"families=[..., {name!r}] names a family that is not registered. Pass a Family "
            f"object (failpoints({{...}}) needs its site names) or one of "
            f"{sorted(_FAMILIES)}."
        ) from None
    return factory()


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


def failpoints(sites: Mapping[str, Sequence[Action]] | Iterable[str], *,
               max_delay: float = 0.0, swarm: bool = True) -> Failpoints:
    """The failpoint family over ``sites`` (names, or a mapping name -> actions)."""
    return Failpoints(sites, max_delay=max_delay, swarm=swarm)


def clock_skews(*, max_seconds: float = 3600.0, backwards: bool = True, jumps: bool = True,
                target: ClockTarget | None = None, swarm: bool = True) -> ClockSkews:
    """The clock family; ``target`` ``"wall"``/``"monotonic"``/``"both"`` moves the
    process's clocks too."""
    return ClockSkews(max_seconds=max_seconds, backwards=backwards, jumps=jumps,
                      target=target, swarm=swarm)


def memory_pressures(*, low: int = 50, high: int = 99, swarm: bool = True) -> MemoryPressures:
    """The host-memory family."""
    return MemoryPressures(low=low, high=high, swarm=swarm)


def cuda_spikes(*, devices: int = 1, total: int | str = "80GiB",
                max_size: int | str | None = None, swarm: bool = True) -> CudaSpikes:
    """The CUDA family on a simulated GPU."""
    return CudaSpikes(devices=devices, total=total, max_size=max_size, swarm=swarm)


def chroma_corruptions(store: StorePath, *, modes: Sequence[str] | None = None,
                       swarm: bool = True) -> ChromaCorruptions:
    """The Chroma family over the test's closed store at ``store``."""
    return ChromaCorruptions(store, modes=modes, swarm=swarm)


def network_toxics(proxy: FaultProxy | Callable[[], FaultProxy], *,
                   kinds: Sequence[str] = DEFAULT_NETWORK_KINDS, max_ms: int = 2000,
                   swarm: bool = True) -> NetworkToxics:
    """The network family over the test's ``FaultProxy``."""
    return NetworkToxics(proxy, kinds=kinds, max_ms=max_ms, swarm=swarm)


def subprocess_failures(command: Any, *, kinds: Sequence[str] | None = None,
                        max_start: float = 5.0, swarm: bool = True) -> SubprocessFailures:
    """The subprocess family over the test's CLI (a program name or ``re.Pattern``)."""
    return SubprocessFailures(command, kinds=kinds, max_start=max_start, swarm=swarm)
