"""``Verdict``: what a checker concluded about a history, with the events that show it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec

from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import Event, active_history, emit, listening
from pytest_resilience.kinds import CHECK_VERDICT

__all__ = ["CheckFailed", "Verdict", "describe", "describe_all", "recorded"]

P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A checker's conclusion: ``ok``, a one-paragraph ``explanation``, the ``events`` named.

    Truthy when the history passed. ``assert_ok()`` raises ``CheckFailed`` otherwise.
    """

    checker: str
    ok: bool
    explanation: str
    events: tuple[Event, ...] = ()

    def __bool__(self) -> bool:
        return self.ok

    def assert_ok(self) -> Verdict:
        """Return ``self`` when the history passed; raise ``CheckFailed`` when it did not."""
        if not self.ok:
            raise CheckFailed(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins, for reports."""
        return {
            "checker": self.checker,
            "ok": self.ok,
            "explanation": self.explanation,
            "events": [e.seq for e in self.events],
        }

    def __str__(self) -> str:
        return f"{self.checker}: {'ok' if self.ok else 'VIOLATED'}: {self.explanation}"


class CheckFailed(AssertionError):
    """A checker found a violation; ``verdict`` holds the explanation and events."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(str(verdict))
        self.verdict = verdict


def passed(checker: str, explanation: str) -> Verdict:
    """A passing verdict."""
    return Verdict(checker, True, explanation)


def failed(checker: str, explanation: str, events: Iterable[Event]) -> Verdict:
    """A failing verdict naming ``events``."""
    return Verdict(checker, False, explanation, tuple(events))


def _attrs(attrs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in attrs.items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(event: Event) -> str:
    """``#seq kind[source]@t(attrs)``: how checkers name an event."""
    return f"#{event.seq} {event.kind}[{event.source}]@{event.time:.6g}s({_attrs(event.attrs)})"


def describe_all(events: Iterable[Event]) -> str:
    """Several events, separated by ``; ``."""
    return "; ".join(describe(e) for e in events)


def recorded(check: Callable[P, Verdict]) -> Callable[P, Verdict]:
    """``check`` that also writes its verdict as a ``check.verdict`` event into the active
    history (the test's), so the test's report record carries it."""

    @functools.wraps(check)
    def judged(*args: P.args, **kwargs: P.kwargs) -> Verdict:
        verdict = check(*args, **kwargs)
        if listening():
            # a history without a clock of its own: stamp at its last event's time
            target = active_history()
            last = target[-1].time if target is not None and len(target) else 0.0
            emit(CHECK_VERDICT, verdict.checker, VirtualClock(last), checker=verdict.checker,
                 passed=verdict.ok, explanation=verdict.explanation)
        return verdict

    return judged
