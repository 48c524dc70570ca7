"""The circuit-breaker checker: the history follows the state machine, no call passes
while OPEN, and an OPEN breaker lets a trial call through once its recovery timeout passed.

It reads ``breaker.transition`` / ``breaker.call`` / ``breaker.rejected`` events; every
breaker starts CLOSED.
"""

from __future__ import annotations

from pytest_resilience._events import Event
from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed
from pytest_resilience.kinds import BREAKER_CALL, BREAKER_REJECTED, BREAKER_TRANSITION

__all__ = ["ALLOWED_TRANSITIONS", "check_breaker"]

NAME = "breaker"

#: The edges of the breaker state machine.
ALLOWED_TRANSITIONS = frozenset({
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
})


def _state(value: object) -> str:
    text = str(getattr(value, "value", value)).lower().replace("-", "_")
    return "half_open" if text in ("halfopen", "half_open") else text


def check_breaker(
    history: HistoryLike,
    *,
    source: str | None = None,
    recovery_timeout: float | None = None,
    tolerance: float = 1e-9,
) -> Verdict:
    """Judge every breaker in ``history`` (``source`` only, if given).

    Each transition must start from the state the breaker is in and follow
    ``ALLOWED_TRANSITIONS``; a ``breaker.call`` must not happen while OPEN; with
    ``recovery_timeout``, OPEN must last at least that long, and a call rejected once it
    has passed means the breaker never half-opened.
    """
    states: dict[str, str] = {}
    opened: dict[str, Event] = {}
    events = select(history, "breaker.", source)
    for event in events:
        name = event.source
        state = states.get(name, "closed")
        timeout = _Timeout(opened.get(name), recovery_timeout, tolerance)
        if event.kind == BREAKER_TRANSITION:
            problem = _transition(event, state, timeout)
            states[name] = _state(event.attrs.get("to"))
            if states[name] == "open":
                opened[name] = event
        elif event.kind == BREAKER_CALL:
            problem = _call(event, state, opened.get(name))
        elif event.kind == BREAKER_REJECTED:
            problem = _rejected(event, state, timeout)
        else:
            problem = None
        if problem is not None:
            text, culprits = problem
            return failed(
                NAME,
                f"Breaker {name!r} {text}. Events: "
                + "; ".join(describe(e) for e in culprits) + ".",
                culprits,
            )
    return passed(
        NAME,
        f"{len(events)} breaker event(s) from {sorted({e.source for e in events})} follow the "
        "state machine; no call passed while OPEN"
        + ("" if recovery_timeout is None else ", and every OPEN period ended on time") + ".",
    )


_Problem = tuple[str, list[Event]] | None


class _Timeout:
    """When the current OPEN period began, and how long it must last."""

    def __init__(self, opened: Event | None, timeout: float | None, tolerance: float) -> None:
        self.opened = opened
        self.timeout = timeout
        self.tolerance = tolerance

    def waited(self, event: Event) -> float | None:
        if self.opened is None or self.timeout is None:
            return None
        return event.time - self.opened.time


def _transition(event: Event, state: str, timeout: _Timeout) -> _Problem:
    old, new = _state(event.attrs.get("from")), _state(event.attrs.get("to"))
    if old != state:
        return f"moved from {old!r} while the history had it {state!r}", [event]
    if (old, new) not in ALLOWED_TRANSITIONS:
        return (f"made the transition {old!r} -> {new!r}, which the state machine does not "
                "allow", [event])
    waited = timeout.waited(event)
    if new == "half_open" and waited is not None and timeout.opened is not None \
            and timeout.timeout is not None and waited + timeout.tolerance < timeout.timeout:
        return (f"half-opened {waited:.6g}s after opening, before the "
                f"{timeout.timeout:.6g}s recovery timeout", [timeout.opened, event])
    return None


def _call(event: Event, state: str, opened: Event | None) -> _Problem:
    if state == "open":
        return "let a call through while OPEN", [opened or event, event]
    if "state" in event.attrs and _state(event.attrs["state"]) != state:
        return (f"recorded a call in state {_state(event.attrs['state'])!r} while its "
                f"transitions put it in {state!r}", [event])
    return None


def _rejected(event: Event, state: str, timeout: _Timeout) -> _Problem:
    if state == "closed":
        return "rejected a call while CLOSED", [event]
    waited = timeout.waited(event)
    if state == "open" and waited is not None and timeout.opened is not None \
            and timeout.timeout is not None and waited >= timeout.timeout + timeout.tolerance:
        return (f"rejected a call {waited:.6g}s after opening, past the "
                f"{timeout.timeout:.6g}s recovery timeout: it never half-opened",
                [timeout.opened, event])
    return None
