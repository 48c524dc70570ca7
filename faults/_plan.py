"""Fault plans: triggers, actions, faults, scheduled faults and seeded, JSON plans.

A ``Fault`` says *where* (a failpoint name), *when* (a ``Trigger``) and *what* (an
``Action``). A ``Scheduled`` fault is one of another family (clock, memory, cuda, chroma,
network, ...) applied when virtual time reaches it. A ``FaultPlan`` holds both, a seed,
and what a chaos run drew (``decisions`` for ``rate`` triggers, ``draws`` for the body's
``chaos.rng``), so replaying a plan needs nothing but the plan: no Hypothesis.
Activating a plan arms its failpoints; only a chaos run applies its scheduled faults.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, final

__all__ = ["Action", "Fault", "FaultPlan", "Scheduled", "Trigger"]

#: The plan format written; ``from_dict`` reads every version in ``PLAN_VERSIONS``.
#: Version 1 (failpoint plans, and chaos plans whose ``decisions`` also fed ``chaos.rng``)
#: still loads.
PLAN_SCHEMA_VERSION = 2
PLAN_VERSIONS = (1, 2)

TriggerKind = Literal["always", "nth", "first", "rate", "after"]
ActionKind = Literal["raise", "return", "delay", "call"]
_TRIGGER_KINDS: tuple[str, ...] = ("always", "nth", "first", "rate", "after")
_ACTION_KINDS: tuple[str, ...] = ("raise", "return", "delay", "call")


@final
@dataclass(frozen=True, slots=True)
class Trigger:
    """When an armed failpoint fires. Build with the class methods."""

    kind: TriggerKind
    value: float = 0.0

    @classmethod
    def always(cls) -> Trigger:
        """Fire on every call."""
        return cls("always")

    @classmethod
    def nth(cls, n: int) -> Trigger:
        """Fire on the ``n``-th call only (counting from 1)."""
        return cls("nth", _positive_int(n, "n"))

    @classmethod
    def first(cls, n: int) -> Trigger:
        """Fire on each of the first ``n`` calls."""
        return cls("first", _positive_int(n, "n"))

    @classmethod
    def rate(cls, p: float) -> Trigger:
        """Fire with probability ``p`` per call, drawn from the plan's seeded RNG."""
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p={p!r} is not a probability. Pass a number in [0, 1].")
        return cls("rate", p)

    @classmethod
    def after(cls, seconds: float) -> Trigger:
        """Fire on every call once ``seconds`` of clock time passed since activation."""
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds={seconds!r} is not valid. Pass a finite number >= 0.")
        return cls("after", seconds)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins for JSON."""
        return {"kind": self.kind} if self.kind == "always" else {
            "kind": self.kind,
            "value": int(self.value) if self.kind in ("nth", "first") else self.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trigger:
        """Inverse of ``to_dict``; validates like the class methods."""
        kind = data.get("kind")
        if kind == "always":
            return cls.always()
        if kind in ("nth", "first"):
            return cls.nth(data["value"]) if kind == "nth" else cls.first(data["value"])
        if kind == "rate":
            return cls.rate(data["value"])
        if kind == "after":
            return cls.after(data["value"])
        raise ValueError(f"trigger kind={kind!r} is unknown. Use one of {_TRIGGER_KINDS}.")

    def __str__(self) -> str:
        return self.kind if self.kind == "always" else f"{self.kind}({self.to_dict()['value']})"


@final
@dataclass(frozen=True, slots=True)
class Action:
    """What an armed failpoint does when it fires. Build with the class methods."""

    kind: ActionKind
    exception: BaseException | type[BaseException] | None = None
    value: Any = None
    seconds: float = 0.0
    fn: Callable[[], Any] | None = field(default=None, compare=False)

    @classmethod
    def raise_(cls, exception: BaseException | type[BaseException] | None = None) -> Action:
        """Raise ``exception`` (an instance or a class); ``FaultInjected`` if none."""
        if exception is not None and not (
            isinstance(exception, BaseException)
            or (isinstance(exception, type) and issubclass(exception, BaseException))
        ):
            raise TypeError(
                f"exception={exception!r} is not an exception. Pass an exception instance "
                "or class, e.g. ConnectionError('reset') or TimeoutError."
            )
        return cls("raise", exception=exception)

    @classmethod
    def returns(cls, value: Any) -> Action:
        """Make the failpoint return ``value`` (``instrument`` skips the wrapped call)."""
        return cls("return", value=value)

    @classmethod
    def delay(cls, seconds: float) -> Action:
        """Sleep ``seconds`` on the activation's clock, then carry on."""
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds={seconds!r} is not valid. Pass a finite number >= 0.")
        return cls("delay", seconds=seconds)

    @classmethod
    def call(cls, fn: Callable[[], Any]) -> Action:
        """Call ``fn()`` (awaited on the async path if it returns an awaitable)."""
        if not callable(fn):
            raise TypeError(f"fn={fn!r} is not callable. Pass a function of no arguments.")
        return cls("call", fn=fn)

    @property
    def terminal(self) -> bool:
        """Whether firing ends the failpoint (raise, return) rather than carrying on."""
        return self.kind in ("raise", "return")

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins for JSON: exceptions by class path and args, functions by path."""
        if self.kind == "raise":
            exc = self.exception
            if exc is None:
                return {"kind": "raise"}
            cls_ = exc if isinstance(exc, type) else type(exc)
            args = [] if isinstance(exc, type) else [_jsonable(a) for a in exc.args]
            return {"kind": "raise", "exception": _qualified(cls_), "args": args}
        if self.kind == "return":
            return {"kind": "return", "value": _jsonable(self.value)}
        if self.kind == "delay":
            return {"kind": "delay", "seconds": self.seconds}
        return {"kind": "call", "fn": _qualified(self.fn)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Action:
        """Inverse of ``to_dict``."""
        kind = data.get("kind")
        if kind == "raise":
            if "exception" not in data:
                return cls.raise_()
            exc_cls = _resolve(data["exception"])
            if not (isinstance(exc_cls, type) and issubclass(exc_cls, BaseException)):
                raise ValueError(f"exception={data['exception']!r} is not an exception class.")
            args = data.get("args") or []
            return cls.raise_(exc_cls(*args) if args else exc_cls)
        if kind == "return":
            return cls.returns(data.get("value"))
        if kind == "delay":
            return cls.delay(data["seconds"])
        if kind == "call":
            return cls.call(_resolve(data["fn"]))
        raise ValueError(f"action kind={kind!r} is unknown. Use one of {_ACTION_KINDS}.")

    def __str__(self) -> str:
        if self.kind == "raise":
            return "raise()" if self.exception is None else f"raise({self.exception!r})"
        if self.kind == "return":
            return f"return({self.value!r})"
        if self.kind == "delay":
            return f"delay({self.seconds!r})"
        return f"call({getattr(self.fn, '__qualname__', self.fn)!s})"


@final
@dataclass(frozen=True, slots=True)
class Fault:
    """Fire ``action`` at failpoint ``failpoint`` whenever ``trigger`` says so."""

    failpoint: str
    action: Action
    trigger: Trigger = field(default_factory=Trigger.always)

    def __post_init__(self) -> None:
        if not isinstance(self.failpoint, str) or not self.failpoint:
            raise ValueError(
                f"failpoint={self.failpoint!r} is not a failpoint name. Pass a non-empty "
                "string such as 'db.write'."
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins for JSON."""
        return {
            "failpoint": self.failpoint,
            "trigger": self.trigger.to_dict(),
            "action": self.action.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Inverse of ``to_dict``."""
        return cls(
            failpoint=data["failpoint"],
            action=Action.from_dict(data["action"]),
            trigger=Trigger.from_dict(data.get("trigger", {"kind": "always"})),
        )

    def __str__(self) -> str:
        return f"{self.failpoint}: {self.action} when {self.trigger}"


@final
@dataclass(frozen=True, slots=True)
class Scheduled:
    """A fault of a family other than failpoints (``family`` names it, ``kind`` and
    ``params`` say what), applied once virtual time reaches ``at``; a ``duration`` param
    (seconds) undoes it that much later, else the end of the run does."""

    family: str
    kind: str
    at: float
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or not self.family:
            raise ValueError(f"family={self.family!r} is not a family name. Pass e.g. 'clock'.")
        at = float(self.at)
        if not math.isfinite(at) or at < 0:
            raise ValueError(f"at={self.at!r} is not valid. Pass a finite time >= 0.")
        object.__setattr__(self, "at", at)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins for JSON."""
        return {"family": self.family, "kind": self.kind, "at": self.at,
                "params": {k: _jsonable(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scheduled:
        """Inverse of ``to_dict``."""
        return cls(str(data["family"]), str(data["kind"]), float(data["at"]),
                   dict(data.get("params", {})))

    def __hash__(self) -> int:
        return hash((self.family, self.kind, self.at, tuple(sorted(self.params.items()))))

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.family}.{self.kind}({params}) at t={self.at:g}s"


Draw = float | int


@final
@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Faults at failpoints, scheduled faults of other families, a seed, and the random
    decisions a chaos run drew (recorded so that a replay repeats them exactly).

    ``decisions``: the coins of ``rate`` triggers, in order. ``draws``: what the body's
    ``chaos.rng`` returned, in order (``None`` in a version-1 chaos plan, whose
    ``decisions`` fed both). Plans compare equal when all of these are equal.
    """

    faults: tuple[Fault, ...] = ()
    seed: int = 0
    scheduled: tuple[Scheduled, ...] = ()
    decisions: tuple[float, ...] = ()
    draws: tuple[Draw, ...] | None = ()

    def __init__(self, faults: Sequence[Fault] = (), seed: int = 0, *,
                 scheduled: Sequence[Scheduled] = (), decisions: Sequence[float] = (),
                 draws: Sequence[Draw] | None = ()) -> None:
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"{fault!r} is not a Fault. Build faults with Fault(...).")
        for entry in scheduled:
            if not isinstance(entry, Scheduled):
                raise TypeError(f"{entry!r} is not a Scheduled fault. Build it with "
                                "Scheduled(family, kind, at, params).")
        object.__setattr__(self, "faults", tuple(faults))
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "scheduled", tuple(sorted(scheduled, key=lambda e: e.at)))
        object.__setattr__(self, "decisions", tuple(float(d) for d in decisions))
        object.__setattr__(self, "draws", None if draws is None else tuple(draws))

    def failpoint_plan(self) -> FaultPlan:
        """The failpoint part alone (what ``faults.activate`` arms)."""
        return FaultPlan(self.faults, seed=self.seed)

    def with_draws(self, decisions: Sequence[float], draws: Sequence[Draw]) -> FaultPlan:
        """A copy holding a run's recorded ``decisions`` and ``draws``."""
        return FaultPlan(self.faults, self.seed, scheduled=self.scheduled,
                         decisions=decisions, draws=draws)

    def families(self) -> list[str]:
        """The families of the scheduled entries, in first-appearance order."""
        return list(dict.fromkeys(e.family for e in self.scheduled))

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins, with a schema version; empty parts are left out."""
        out: dict[str, Any] = {
            "version": PLAN_SCHEMA_VERSION,
            "seed": self.seed,
            "faults": [f.to_dict() for f in self.faults],
        }
        if self.scheduled:
            out["scheduled"] = [s.to_dict() for s in self.scheduled]
        if self.decisions:
            out["decisions"] = list(self.decisions)
        if self.draws is None or self.draws:
            out["draws"] = None if self.draws is None else list(self.draws)
        return out

    def to_json(self, indent: int | None = None) -> str:
        """The plan as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultPlan:
        """Inverse of ``to_dict``; reads version 1 plans (failpoint and chaos) too."""
        version = data.get("version", PLAN_SCHEMA_VERSION)
        if version not in PLAN_VERSIONS:
            raise ValueError(
                f"plan version={version!r} is not supported. This release reads versions "
                f"{', '.join(map(str, PLAN_VERSIONS))}."
            )
        decisions = [float(d) for d in data.get("decisions", [])]
        # a version-1 chaos plan (no "draws") fed chaos.rng from its decisions
        legacy = version == 1 and bool(decisions)
        draws = data.get("draws", None if legacy else [])
        return cls(
            [Fault.from_dict(f) for f in data.get("faults", [])],
            seed=data.get("seed", 0),
            scheduled=[Scheduled.from_dict(s) for s in data.get("scheduled", [])],
            decisions=decisions,
            draws=None if draws is None else [_draw(d) for d in draws],
        )

    @classmethod
    def from_json(cls, text: str) -> FaultPlan:
        """Inverse of ``to_json``."""
        return cls.from_dict(json.loads(text))

    def __len__(self) -> int:
        return len(self.faults) + len(self.scheduled)

    def __str__(self) -> str:
        lines = "\n".join([f"  {f}" for f in self.faults] + [f"  {s}" for s in self.scheduled])
        return f"FaultPlan(seed={self.seed}, {len(self)} faults)\n{lines}".rstrip()


def _draw(value: Any) -> Draw:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"draw={value!r} is not a number. A plan's draws are the ints and "
                         "floats chaos.rng returned.")
    return value


def _positive_int(n: int, name: str) -> int:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"{name}={n!r} is not valid. Pass an integer >= 1.")
    return int(n)


def _qualified(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(
            f"{obj!r} cannot be serialised: it has no importable name. Use a module-level "
            "function or class."
        )
    return f"{module}:{qualname}"


def _resolve(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    if not qualname:
        module_name, _, qualname = path.rpartition(".")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{value!r} is not JSON-serialisable, so the plan cannot be saved. Use plain "
            "values (str, int, float, bool, None, lists, dicts)."
        ) from None
    return value
