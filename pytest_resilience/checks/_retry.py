"""The retry checker: attempt count, delays inside the backoff + jitter envelope, deadline,
no retry after a non-retryable error, and (full jitter) delays that are not too short.

It reads ``retry.attempt`` / ``retry.sleep`` / ``retry.giveup`` events; a call starts at
each ``retry.attempt`` with ``attempt == 1``.

Full jitter draws each delay from U(0, d), so a retry that never waits (a missing
backoff) stays inside the envelope [0, d]. What gives it away is that its delays are all
too short: with n sleeps whose largest ratio ``delay / d`` is m, uniform draws stay at or
below m with probability m**n, the most powerful test of U(0, d) against U(0, c*d) with
c < 1 (the largest draw is the scale's sufficient statistic). No backoff gives m = 0,
probability 0, so one sleep suffices; a correct retry is flagged with probability at
most ``significance`` per history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_resilience._backoff import JITTERS, Backoff
from pytest_resilience._events import Event
from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed
from pytest_resilience.kinds import RETRY_ATTEMPT, RETRY_SLEEP

__all__ = ["check_retry"]

NAME = "retry"


@dataclass
class _Call:
    events: list[Event] = field(default_factory=list)

    @property
    def start(self) -> float:
        first = self.events[0]
        return first.time - float(first.attrs.get("elapsed", 0.0) or 0.0)


def _calls(events: list[Event]) -> dict[str, list[_Call]]:
    calls: dict[str, list[_Call]] = {}
    for event in events:
        per_source = calls.setdefault(event.source, [])
        starts = event.kind == RETRY_ATTEMPT and event.attrs.get("attempt") == 1
        if starts or not per_source:
            per_source.append(_Call())
        per_source[-1].events.append(event)
    return calls


def _envelope(backoff: Backoff, jitter: str, retry: int) -> tuple[float, float]:
    nominal = backoff.delay(retry)
    if jitter == "none":
        return nominal, nominal
    if jitter == "equal":
        return nominal / 2, nominal
    if jitter == "decorrelated":
        return min(backoff.base, backoff.max), backoff.max
    return 0.0, nominal


def _error_name(error: object) -> str:
    text = str(error or "")
    return text.split("(", 1)[0].rsplit(".", 1)[-1]


def check_retry(
    history: HistoryLike,
    *,
    source: str | None = None,
    attempts: int | None = None,
    backoff: Backoff | None = None,
    jitter: str = "full",
    deadline: float | None = None,
    not_retryable: Sequence[type[BaseException] | str] = (),
    tolerance: float = 1e-9,
    significance: float = 1e-6,
) -> Verdict:
    """Judge every retried call in ``history`` (of ``source``, or of every retry).

    ``attempts``: the most attempts a call may make. ``backoff`` + ``jitter``: each
    ``retry.sleep`` delay must lie in the envelope (full: [0, d], equal: [d/2, d], none:
    d, decorrelated: [base, max]) and the next attempt must not start before the delay
    has passed on the clock. ``deadline``: no wait may end past the deadline, counted from
    the call's start. ``not_retryable``: an error of these classes (or class names) ends
    the call. With ``jitter="full"`` and a ``backoff``, a source whose delays are all so
    short that U(0, d) draws would be that short with probability below ``significance``
    fails too (a missing or shrunken backoff; see the module docstring).
    """
    if jitter not in JITTERS:
        raise ValueError(f"jitter={jitter!r} is not a jitter mode. Pass one of {JITTERS}.")
    if not 0 < significance < 1:
        raise ValueError(f"significance={significance!r} is not a probability. Pass a number "
                         "in (0, 1), such as 1e-6.")
    blocked = {n if isinstance(n, str) else n.__name__ for n in not_retryable}
    calls = _calls(select(history, "retry.", source))
    n_calls = sum(len(c) for c in calls.values())
    for name, per_source in calls.items():
        for index, call in enumerate(per_source, 1):
            problem = _judge(call, attempts=attempts, backoff=backoff, jitter=jitter,
                             deadline=deadline, blocked=blocked, tol=tolerance)
            if problem is not None:
                text, culprits = problem
                return failed(
                    NAME,
                    f"Retried call {index} of {name!r} (started at {call.start:.6g}s) "
                    f"{text}. Events: " + "; ".join(describe(e) for e in culprits) + ".",
                    culprits,
                )
        if jitter == "full" and backoff is not None:
            verdict = _too_short(name, per_source, backoff, deadline, significance)
            if verdict is not None:
                return verdict
    return passed(
        NAME,
        f"{n_calls} retried call(s) from {sorted(calls) or 'no source'} kept the attempt "
        "limit, the backoff envelope, the deadline and the non-retryable rule"
        + (", with delays long enough for full jitter." if jitter == "full" and backoff
           else "."),
    )


def _judge(
    call: _Call,
    *,
    attempts: int | None,
    backoff: Backoff | None,
    jitter: str,
    deadline: float | None,
    blocked: set[str],
    tol: float,
) -> tuple[str, list[Event]] | None:
    tries = [e for e in call.events if e.kind == RETRY_ATTEMPT]
    if attempts is not None and len(tries) > attempts:
        return (f"made {len(tries)} attempts, more than the limit of {attempts}",
                [tries[attempts]])
    pending_sleep: Event | None = None
    last_error: Event | None = None
    for event in call.events:
        if event.kind == RETRY_ATTEMPT:
            if last_error is not None and _error_name(last_error.attrs.get("error")) in blocked:
                return ("was retried after a non-retryable error "
                        f"{last_error.attrs.get('error')}", [last_error, event])
            if last_error is not None and backoff is not None:
                if pending_sleep is None:
                    return "retried without sleeping for the backoff", [last_error, event]
                waited = event.time - pending_sleep.time
                delay = float(pending_sleep.attrs.get("delay", 0.0))
                if waited + tol < delay:
                    return (f"finished the next attempt {waited:.6g}s after announcing a "
                            f"{delay:.6g}s sleep, so it did not wait", [pending_sleep, event])
            pending_sleep = None
            last_error = event if event.attrs.get("outcome") == "error" else None
        elif event.kind == RETRY_SLEEP:
            pending_sleep = event
            delay = float(event.attrs.get("delay", 0.0))
            retry_no = int(event.attrs.get("attempt", 1))
            if backoff is not None:
                low, high = _envelope(backoff, jitter, retry_no)
                if not low - tol <= delay <= high + tol:
                    return (f"slept {delay:.6g}s before retry {retry_no}, outside the "
                            f"{jitter}-jitter envelope [{low:.6g}, {high:.6g}]s", [event])
            if deadline is not None and event.time + delay - call.start > deadline + tol:
                return (f"planned a wait ending {event.time + delay - call.start:.6g}s after "
                        f"the start, past the {deadline:.6g}s deadline", [event])
    return None



def _too_short(name: str, calls: list[_Call], backoff: Backoff, deadline: float | None,
               significance: float) -> Verdict | None:
    """Fail ``name`` when its full-jitter delays are implausibly short (m**n < significance).

    A sleep's cap is its nominal delay d, or the time left before ``deadline`` when that is
    shorter: a retry emits only the delays that fit, which are uniform below that cap.
    """
    ratios: list[tuple[float, Event]] = []
    for call in calls:
        for event in call.events:
            if event.kind != RETRY_SLEEP:
                continue
            cap = backoff.delay(int(event.attrs.get("attempt", 1)))
            if deadline is not None:
                cap = min(cap, deadline - (event.time - call.start))
            if cap > 0:
                ratios.append((float(event.attrs.get("delay", 0.0)) / cap, event))
    if not ratios:
        return None
    longest = max(r for r, _ in ratios)
    chance = min(1.0, longest) ** len(ratios)
    if chance >= significance:
        return None
    shown = [e for _, e in ratios[:3]]
    more = f" (and {len(ratios) - 3} more)" if len(ratios) > 3 else ""
    return failed(
        NAME,
        f"Retried calls of {name!r} slept {len(ratios)} time(s) with full jitter, and the "
        f"longest sleep was {longest:.3g} of its backoff delay. Full jitter draws each delay "
        f"uniformly from [0, delay], which stays that short with probability {chance:.3g}, "
        f"below significance={significance:g}: the backoff is missing or shorter than "
        f"configured. Events: {'; '.join(describe(e) for e in shown)}{more}.",
        shown,
    )
