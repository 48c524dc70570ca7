"""Fault plans: triggers, actions, faults, scheduled faults and seeded, JSON plans.

A ``Fault`` says *where* (a failpoint name), *when* (a ``Trigger``) and *what* (an
``Action``). A ``Scheduled`` fault is one of another family (clock, memory, cuda, chroma,
network, ...) applied when virtual time reaches it. A ``FaultPlan`` holds both, a seed,
and what a chaos run drew (``decisions`` for ``rate`` triggers, ``draws`` for the body's
``chaos.rng``), so replaying a plan needs nothing but the plan: no Hypothesis.
Activating a plan arms its failpoints; only a chaos run applies its scheduled faults.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, final

from pytest_resilience import _validate

__all__ = ["Action", "Fault", "FaultPlan", "Scheduled", "Trigger", "allow_plan_modules"]

#: The plan format written; ``from_dict`` reads every version in ``PLAN_VERSIONS``.
#: Version 1 (failpoint plans, and chaos plans whose ``decisions`` also fed ``chaos.rng``)
#: still loads.
PLAN_SCHEMA_VERSION = 2
PLAN_VERSIONS = (1, 2)

TriggerKind = Literal["always", "nth", "first", "rate", "after"]
ActionKind = Literal["raise", "return", "delay", "call"]
_TRIGGER_KINDS: tuple[str, ...] = ("always", "nth", "first", "rate", "after")
_ACTION_KINDS: tuple[str, ...] = ("raise", "return", "delay", "call")
_PLAN_ACCEPTED = "data written by FaultPlan.to_dict / to_json"

#: Modules (and their submodules) a plan may name although they are not imported yet.
_allowed_lock = threading.Lock()
_allowed: dict[str, int] = {}


def allow_plan_modules(*names: str) -> Callable[[], None]:
    """Let loaded plans name ``names`` (and their submodules) even when not yet imported.

    Loading a plan never imports a module on its own: an exception class or function it
    names must come from a module already imported, from one allowed here, or from one
    passed to ``from_dict``/``from_json`` as ``allow_modules=``. Returns a function that
    takes this permission back.
    """
    checked = [_validate.text(n, "names", what="a module name",
                              accepted="module names such as 'myapp.errors'") for n in names]
    with _allowed_lock:
        for name in checked:
            _allowed[name] = _allowed.get(name, 0) + 1

    def undo() -> None:
        with _allowed_lock:
            for name in checked:
                left = _allowed.get(name, 0) - 1
                if left > 0:
                    _allowed[name] = left
                else:
                    _allowed.pop(name, None)

    return undo


def _module_allowed(module: str, extra: Iterable[str]) -> bool:
    if module in sys.modules:
        return True
    with _allowed_lock:
        allowed = [*_allowed, *extra]
    return any(module == name or module.startswith(name + ".") for name in allowed)


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
        return cls("rate", _validate.fraction(p, "p", what="a probability",
                                              accepted="a number in [0, 1]"))

    @classmethod
    def after(cls, seconds: float) -> Trigger:
        """Fire on every call once ``seconds`` of clock time passed since activation."""
        return cls("after", _validate.seconds(seconds, "seconds", what="valid",
                                              accepted="a finite number >= 0"))

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins for JSON."""
        return {"kind": self.kind} if self.kind == "always" else {
            "kind": self.kind,
            "value": int(self.value) if self.kind in ("nth", "first") else self.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trigger:
        """Inverse of ``to_dict``; validates like the class methods."""
        with _validate.parsing("data", data, "a trigger", _PLAN_ACCEPTED):
            kind = _mapping(data, "trigger").get("kind")
            if kind == "always":
                return cls.always()
            if kind == "nth":
                return cls.nth(data["value"])
            if kind == "first":
                return cls.first(data["value"])
            if kind == "rate":
                return cls.rate(data["value"])
            if kind == "after":
                return cls.after(data["value"])
            raise _unknown("trigger kind", kind, _TRIGGER_KINDS)

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
                f"exception={_validate.show(exception)} is not an exception. Pass an exception "
                f"instance "
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
        return cls("delay", seconds=_validate.seconds(seconds, "seconds", what="valid",
                                                      accepted="a finite number >= 0"))

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
    def from_dict(cls, data: Mapping[str, Any], *,
                  allow_modules: Iterable[str] = ()) -> Action:
        """Inverse of ``to_dict``.

        An exception class or function is looked up by name only in a module already
        imported or allowed (``allow_modules``, ``allow_plan_modules``): loading a plan
        never imports code.
        """
        with _validate.parsing("data", data, "an action", _PLAN_ACCEPTED):
            kind = _mapping(data, "action").get("kind")
            if kind == "raise":
                if "exception" not in data:
                    return cls.raise_()
                exc_cls = _resolve(data["exception"], "exception", allow_modules)
                if not (isinstance(exc_cls, type) and issubclass(exc_cls, BaseException)):
                    raise _bad("exception", data["exception"], "an exception class",
                               "'module:ExceptionClass'")
                args = data.get("args") or []
                if not isinstance(args, list):
                    raise _bad("args", args, "a list of arguments", "a JSON list")
                return cls.raise_(exc_cls(*args) if args else exc_cls)
            if kind == "return":
                return cls.returns(data.get("value"))
            if kind == "delay":
                return cls.delay(data["seconds"])
            if kind == "call":
                return cls.call(_resolve(data["fn"], "fn", allow_modules))
            raise _unknown("action kind", kind, _ACTION_KINDS)

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
        _validate.text(self.failpoint, "failpoint", what="a failpoint name",
                       accepted="a non-empty string such as 'db.write'")
        if not isinstance(self.action, Action):
            raise _bad("action", self.action, "an Action",
                       "Action.raise_(...), Action.returns(...), Action.delay(...) or "
                       "Action.call(...)", TypeError)
        if not isinstance(self.trigger, Trigger):
            raise _bad("trigger", self.trigger, "a Trigger",
                       "Trigger.always(), nth(n), first(n), rate(p) or after(seconds)",
                       TypeError)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins for JSON."""
        return {
            "failpoint": self.failpoint,
            "trigger": self.trigger.to_dict(),
            "action": self.action.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *,
                  allow_modules: Iterable[str] = ()) -> Fault:
        """Inverse of ``to_dict`` (``allow_modules`` as for ``Action.from_dict``)."""
        with _validate.parsing("data", data, "a fault", _PLAN_ACCEPTED):
            return cls(
                failpoint=_mapping(data, "fault")["failpoint"],
                action=Action.from_dict(data["action"], allow_modules=allow_modules),
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
        object.__setattr__(self, "family", _validate.text(self.family, "family",
                                                          what="a family name"))
        object.__setattr__(self, "kind", _validate.text(self.kind, "kind",
                                                        what="a fault kind"))
        object.__setattr__(self, "at", _validate.seconds(self.at, "at",
                                                         what="a time in seconds"))
        if not isinstance(self.params, Mapping):
            raise _bad("params", self.params, "a mapping of parameters", "a dict", TypeError)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins for JSON."""
        return {"family": self.family, "kind": self.kind, "at": self.at,
                "params": {k: _jsonable(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scheduled:
        """Inverse of ``to_dict``."""
        with _validate.parsing("data", data, "a scheduled fault", _PLAN_ACCEPTED):
            entry = _mapping(data, "scheduled fault")
            params = entry.get("params", {})
            if not isinstance(params, Mapping):
                raise _bad("params", params, "a mapping of parameters", "a JSON object",
                           TypeError)
            return cls(entry["family"], entry["kind"], entry["at"], dict(params))

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
        items = _sequence(faults, "faults", Fault, "a list of Fault(...)")
        entries = _sequence(scheduled, "scheduled", Scheduled,
                            "a list of Scheduled(family, kind, at, params)")
        coins = _sequence(decisions, "decisions", float | int,
                          "the numbers in [0, 1) a chaos run drew")
        checked = _validate.seed(seed, "seed")
        object.__setattr__(self, "faults", items)
        object.__setattr__(self, "seed", 0 if checked is None else checked)
        object.__setattr__(self, "scheduled", tuple(sorted(entries, key=lambda e: e.at)))
        object.__setattr__(self, "decisions", tuple(
            _validate.fraction(d, "decisions", high_open=True) for d in coins))
        object.__setattr__(self, "draws", None if draws is None else tuple(
            _draw(d) for d in _sequence(draws, "draws", float | int,
                                        "the numbers chaos.rng returned")))

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
    def from_dict(cls, data: Mapping[str, Any], *,
                  allow_modules: Iterable[str] = ()) -> FaultPlan:
        """Inverse of ``to_dict``; reads version 1 plans (failpoint and chaos) too.

        Names of exception classes and functions resolve only in modules already
        imported, allowed by ``allow_plan_modules`` or listed in ``allow_modules``.
        """
        with _validate.parsing("data", data, "a fault plan", _PLAN_ACCEPTED):
            version = _mapping(data, "plan").get("version", PLAN_SCHEMA_VERSION)
            if isinstance(version, bool) or version not in PLAN_VERSIONS:
                raise _bad("version", version, "a supported plan version",
                           "one of versions " + ", ".join(map(str, PLAN_VERSIONS)) +
                           " (what this release reads)")
            lists = {}
            for key in ("faults", "scheduled", "decisions", "draws"):
                value = data.get(key, [])
                if value is not None and not isinstance(value, list):
                    raise _bad(key, value, f"a list of {key}", "a JSON list", TypeError)
                lists[key] = value
            decisions = [_validate.fraction(d, "decisions", high_open=True)
                         for d in lists["decisions"] or []]
            # a version-1 chaos plan (no "draws") fed chaos.rng from its decisions
            legacy = version == 1 and bool(decisions)
            draws = lists["draws"] if "draws" in data else (None if legacy else [])
            return cls(
                [Fault.from_dict(f, allow_modules=allow_modules) for f in lists["faults"] or []],
                seed=data.get("seed", 0),
                scheduled=[Scheduled.from_dict(s) for s in lists["scheduled"] or []],
                decisions=decisions,
                draws=None if draws is None else [_draw(d) for d in draws],
            )

    @classmethod
    def from_json(cls, text: str, *, allow_modules: Iterable[str] = ()) -> FaultPlan:
        """Inverse of ``to_json`` (``allow_modules`` as for ``from_dict``)."""
        return cls.from_dict(load_json(text, "a fault plan"), allow_modules=allow_modules)

    def __len__(self) -> int:
        return len(self.faults) + len(self.scheduled)

    def __str__(self) -> str:
        lines = "\n".join([f"  {f}" for f in self.faults] + [f"  {s}" for s in self.scheduled])
        return f"FaultPlan(seed={self.seed}, {len(self)} faults)\n{lines}".rstrip()


def _draw(value: Any) -> Draw:
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)):
        kind = TypeError if not isinstance(value, int | float) else ValueError
        raise _bad("draws", value, "a draw", "the finite ints and floats chaos.rng returned",
                   kind)
    return value


def _sequence(value: object, name: str, kind: Any, accepted: str) -> tuple[Any, ...]:
    """``value`` as a tuple of ``kind`` items, else a ``TypeError`` naming ``name``."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise _bad(name, value, f"a list of {name}", accepted, TypeError)
    items = tuple(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, kind):
            raise _bad(name, item, f"an item of {name}", accepted, TypeError)
    return items


def _positive_int(n: int, name: str) -> int:
    return _validate.count(n, name, what="valid")


def _bad(name: str, value: object, what: str, accepted: str,
         kind: type[Exception] = ValueError) -> Exception:
    exc = kind(f"{name}={_validate.show(value)} is not {what}. Pass {accepted}.")
    exc.argument = name  # type: ignore[attr-defined]
    return exc


def _unknown(what: str, value: object, choices: tuple[str, ...]) -> Exception:
    return _bad("kind", value, f"a known {what}", "one of " + ", ".join(choices))


def _mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _bad("data", data, f"a {what} mapping", _PLAN_ACCEPTED, TypeError)
    return data


def load_json(text: object, what: str) -> Any:
    """``json.loads(text)`` with a ``ValueError`` naming ``text`` when it is not JSON."""
    if not isinstance(text, str | bytes | bytearray):
        raise _bad("text", text, f"{what} in JSON", "the text written by to_json", TypeError)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _bad("text", text, f"{what} in JSON ({exc})",
                   "the text written by to_json") from None


def _qualified(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(
            f"{obj!r} cannot be serialised: it has no importable name. Use a module-level "
            "function or class."
        )
    return f"{module}:{qualname}"


def _resolve(path: object, name: str, allow_modules: Iterable[str]) -> Any:
    """The object ``module:qualname`` names, from an imported (or allowed) module only."""
    if not isinstance(path, str):
        raise _bad(name, path, "an importable name", "'module:qualname'", TypeError)
    module_name, _, qualname = path.partition(":")
    if not qualname:
        module_name, _, qualname = path.rpartition(".")
    if not module_name or not qualname:
        raise _bad(name, path, "an importable name", "'module:qualname'")
    if not _module_allowed(module_name, allow_modules):
        raise _bad(name, path, f"loadable: module {module_name!r} is not imported, and "
                   "loading a plan never imports code",
                   f"a plan naming imported modules only, or allow it: "
                   f"--resilience-allow-module={module_name} (ini resilience_allow_modules), "
                   f"faults.allow_plan_modules({module_name!r}) or "
                   f"from_json(..., allow_modules=[{module_name!r}])")
    import importlib

    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        if part.startswith("__"):
            raise _bad(name, path, "an importable name", "a public module-level name")
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _bad(name, path, f"an importable name ({module_name!r} has no "
                       f"{qualname!r})", "'module:qualname' of an existing object") from None
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
