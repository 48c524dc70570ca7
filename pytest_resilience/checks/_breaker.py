"""The circuit-breaker checker: the history follows the state machine, no call passes
while OPEN, and an OPEN breaker lets a trial call through once its recovery timeout passed.

It reads ``breaker.transition`` / ``breaker.call`` / ``breaker.rejected`` events; every
breaker starts CLOSED. The boundary: a breaker that opened at t must refuse calls before
t + ``recovery_timeout`` and must let the first call arriving at or after it through as a
trial (half-open); rejecting that call means it never half-opens.

A breaker watched from outside (``watch_breaker``) writes no transitions: its states are
inferred from the admitted and refused calls. It opens when a failed call trips it (after
``failure_threshold`` consecutive failures when that is given; otherwise the failure
just before the first refusal); the first call admitted after the timeout is the trial,
whose failure opens it again and whose success closes it.
"""

from __future__ import annotations

from pytest_resilience._events import Event
from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed, recorded
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


@recorded
def check_breaker(
    history: HistoryLike,
    *,
    source: str | None = None,
    recovery_timeout: float | None = None,
    failure_threshold: int | None = None,
    tolerance: float = 1e-9,
) -> Verdict:
    """Judge every breaker in ``history`` (``source`` only, if given).

    Each transition must start from the state the breaker is in and follow
    ``ALLOWED_TRANSITIONS``; a ``breaker.call`` must not happen while OPEN; with
    ``recovery_timeout``, OPEN must last at least that long, and a call rejected once it
    has passed (at exactly the timeout too) means the breaker never half-opened. A breaker
    with no transitions is judged by inference (see the module docstring);
    ``failure_threshold`` is the number of consecutive failures that opens it.
    """
    if failure_threshold is not None and (isinstance(failure_threshold, bool) or not
                                          isinstance(failure_threshold, int)
                                          or failure_threshold < 1):
        raise ValueError(f"failure_threshold={failure_threshold!r} is not a count. Pass an "
                         "int >= 1, or leave it out to infer openings from refusals.")
    states: dict[str, str] = {}
    opened: dict[str, Event] = {}
    events = select(history, "breaker.", source)
    with_transitions = {e.source for e in events if e.kind == BREAKER_TRANSITION}
    for name in dict.fromkeys(e.source for e in events if e.source not in with_transitions):
        problem = _Inferred(recovery_timeout, failure_threshold, tolerance).judge(
            [e for e in events if e.source == name])
        if problem is not None:
            text, culprits = problem
            return failed(NAME, f"Breaker {name!r} {text}. Events: "
                          + "; ".join(describe(e) for e in culprits) + ".", culprits)
    for event in events:
        if event.source not in with_transitions:
            continue
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
            and timeout.timeout is not None and waited + timeout.tolerance >= timeout.timeout:
        return (f"rejected a call {waited:.6g}s after opening, at or past the "
                f"{timeout.timeout:.6g}s recovery timeout: it never half-opened",
                [timeout.opened, event])
    return None


class _Inferred:
    """The state machine of a breaker watched from outside, rebuilt from its calls."""

    def __init__(self, timeout: float | None, threshold: int | None, tol: float) -> None:
        self.timeout = timeout
        self.threshold = threshold
        self.tol = tol
        self.state = "closed"
        self.failures: list[Event] = []  # consecutive failed calls while closed
        self.last_failure: Event | None = None
        self.opened_at = 0.0
        self.opener: Event | None = None

    def judge(self, events: list[Event]) -> _Problem:
        """The first violation in ``events`` (one breaker's), in time order."""
        steps: list[tuple[float, float, str, Event]] = []
        for event in events:
            if event.kind == BREAKER_CALL:
                started = event.attrs.get("started")
                if not isinstance(started, int | float):
                    started = event.time - float(event.attrs.get("duration", 0.0) or 0.0)
                steps.append((float(started), event.seq, "admit", event))
                steps.append((event.time, event.seq + 0.5, "outcome", event))
            elif event.kind == BREAKER_REJECTED:
                steps.append((event.time, event.seq, "reject", event))
        handlers = {"admit": self.admit, "outcome": self.outcome, "reject": self.reject}
        for at, _, step, event in sorted(steps, key=lambda s: (s[0], s[1])):
            problem = handlers[step](event, at)
            if problem is not None:
                return problem
        return None

    def _open(self, at: float, event: Event) -> None:
        self.state, self.opened_at, self.opener = "open", at, event
        self.failures = []

    def admit(self, event: Event, at: float) -> _Problem:
        if self.state != "open":
            return None
        waited = at - self.opened_at
        if self.timeout is not None and waited + self.tol < self.timeout:
            return (f"let a call through {waited:.6g}s after opening, before the "
                    f"{self.timeout:.6g}s recovery timeout", [self.opener or event, event])
        self.state = "half_open"
        return None

    def outcome(self, event: Event, at: float) -> _Problem:
        failed_call = event.attrs.get("outcome") == "error"
        if self.state == "half_open":
            if failed_call:
                self._open(at, event)
            else:
                self.state = "closed"
        elif self.state == "closed":
            if failed_call:
                self.failures.append(event)
                self.last_failure = event
                if self.threshold is not None and len(self.failures) >= self.threshold:
                    self._open(at, event)
            else:
                self.failures = []
        return None

    def reject(self, event: Event, at: float) -> _Problem:
        if self.state == "closed":
            if self.threshold is not None:
                return (f"rejected a call while CLOSED, after {len(self.failures)} consecutive "
                        f"failure(s) of the {self.threshold} that open it",
                        [*self.failures[-1:], event])
            if self.last_failure is None:
                return "rejected a call while CLOSED: no admitted call had failed", [event]
            self._open(self.last_failure.time, self.last_failure)
        if self.state == "open" and self.timeout is not None:
            waited = at - self.opened_at
            if waited + self.tol >= self.timeout:
                return (f"rejected a call {waited:.6g}s after opening, at or past the "
                        f"{self.timeout:.6g}s recovery timeout: it never let a trial call "
                        "through (half-open)", [self.opener or event, event])
        return None
