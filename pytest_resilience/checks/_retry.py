"""The retry checker: attempt count, delays inside the backoff + jitter envelope, deadline,
no retry after a non-retryable error, a give-up that raises, and (full jitter) delays that
are not too short.

It reads two kinds of history:

- a retry component's ``retry.attempt`` / ``retry.sleep`` events (this project's
  ``Retry``, tenacity through ``TenacityRecorder``); a call starts at each
  ``retry.attempt`` with ``attempt == 1``;
- plain code under observers: the ``call.start``/``call.end`` events of the retried
  operation (``watch_calls``) and the ``sleep.called`` events between them
  (``watch_sleeps``). The attempts of one retried call are the operation's calls inside
  one call of the retrying function (watch it too: it also shows how the call gave up);
  without it, a retried call ends at a successful attempt.

A retried call whose attempts all failed must raise: when the retrying function returned
instead, the last error was swallowed (a ``None`` where the caller expected data), unless
the test declares the ``fallback`` value it returns on purpose.

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
from pytest_resilience._calltree import Call, calls
from pytest_resilience._events import Event
from pytest_resilience._observing import short
from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed, recorded
from pytest_resilience.kinds import RETRY_ATTEMPT, RETRY_SLEEP, SLEEP_CALLED

__all__ = ["NO_FALLBACK", "check_retry"]

NAME = "retry"
#: ``fallback=`` default: a retry that gives up must raise.
NO_FALLBACK: object = type("NoFallback", (), {"__repr__": lambda self: "NO_FALLBACK"})()


@dataclass
class _Try:
    """One attempt: the event that records it, when it began, and how it ended."""

    event: Event
    begun: float
    ok: bool
    error: str | None


@dataclass
class _Wait:
    """The sleep(s) before the next attempt: the first sleep's event, and their total."""

    event: Event
    delay: float
    retry: int
    events: list[Event] = field(default_factory=list)


@dataclass
class _Retried:
    """One retried call: its attempts and waits in order, and how the caller saw it end."""

    source: str
    start: float
    items: list[_Try | _Wait] = field(default_factory=list)
    outcome: Event | None = None  # the retrying function's call.end (observed code)

    @property
    def tries(self) -> list[_Try]:
        return [i for i in self.items if isinstance(i, _Try)]

    @property
    def waits(self) -> list[_Wait]:
        return [i for i in self.items if isinstance(i, _Wait)]


def _component_calls(events: list[Event]) -> dict[str, list[_Retried]]:
    """Retried calls from ``retry.attempt``/``retry.sleep`` events."""
    found: dict[str, list[_Retried]] = {}
    for event in events:
        per_source = found.setdefault(event.source, [])
        if event.kind == RETRY_ATTEMPT:
            begun = event.time
            if event.attrs.get("attempt") == 1 or not per_source:
                start = event.time - float(event.attrs.get("elapsed", 0.0) or 0.0)
                per_source.append(_Retried(event.source, start))
            per_source[-1].items.append(_Try(event, begun, event.attrs.get("outcome") == "ok",
                                             _error_name(event.attrs.get("error"))))
        elif event.kind == RETRY_SLEEP:
            if not per_source:
                per_source.append(_Retried(event.source, event.time))
            delay = float(event.attrs.get("delay", 0.0))
            per_source[-1].items.append(
                _Wait(event, delay, int(event.attrs.get("attempt", 1)), [event]))
    return {k: v for k, v in found.items() if v}


def _observed_calls(events: list[Event], source: str | None) -> dict[str, list[_Retried]]:
    """Retried calls from watched calls and the sleeps between them.

    Judged: ``source``, else every watched layer that calls no other watched layer (the
    operations; the functions that retry them are their parents).
    """
    tree = calls(events)
    if source is not None:
        sources = {source}
    else:
        sources = {c.source for c in tree.values()} - {
            c.source for c in tree.values() if c.children}
    sleeps = [e for e in events if e.kind == SLEEP_CALLED]
    found: dict[str, list[_Retried]] = {}
    groups: dict[tuple[str, int | None], list[list[Call]]] = {}
    for call in tree.values():
        if call.source not in sources:
            continue
        runs = groups.setdefault((call.source, call.parent), [[]])
        if call.parent is None and runs[-1] and runs[-1][-1].outcome == "ok":
            runs.append([])  # without a retrying parent, a success ends a retried call
        runs[-1].append(call)
    for (name, parent), runs in groups.items():
        for run in runs:
            if run:
                found.setdefault(name, []).append(
                    _retried(name, run, tree.get(parent) if parent is not None else None,
                             sleeps))
    for per_source in found.values():
        per_source.sort(key=lambda r: r.start)
    return found


def _retried(name: str, run: list[Call], parent: Call | None,
             sleeps: list[Event]) -> _Retried:
    first, last = run[0], run[-1]
    owner = parent.id if parent is not None else None
    if parent is not None and parent.end is not None:
        upto = parent.end.seq
    else:
        upto = last.end.seq if last.end is not None else last.start.seq
    retried = _Retried(name, first.start.time,
                       outcome=parent.end if parent is not None else None)
    items: list[tuple[int, _Try | Event]] = [
        (c.start.seq, _Try(c.end or c.start, c.start.time, c.outcome == "ok", c.error))
        for c in run
    ]
    items += [(e.seq, e) for e in sleeps
              if first.start.seq < e.seq < upto and e.attrs.get("call") == owner]
    failures = 0
    for _, item in sorted(items, key=lambda pair: pair[0]):
        if isinstance(item, _Try):
            retried.items.append(item)
            failures += 0 if item.ok else 1
            continue
        seconds = float(item.attrs.get("seconds", 0.0))
        previous = retried.items[-1] if retried.items else None
        if isinstance(previous, _Wait):  # several sleeps before one retry add up
            previous.delay += seconds
            previous.events.append(item)
        else:
            retried.items.append(_Wait(item, seconds, max(failures, 1), [item]))
    return retried


def _envelope(backoff: Backoff, jitter: str, retry: int) -> tuple[float, float]:
    nominal = backoff.delay(retry)
    if jitter == "none":
        return nominal, nominal
    if jitter == "equal":
        return nominal / 2, nominal
    if jitter == "decorrelated":
        return min(backoff.base, backoff.max), backoff.max
    return 0.0, nominal


def _error_name(error: object) -> str | None:
    if error is None:
        return None
    text = str(error)
    return text.split("(", 1)[0].rsplit(".", 1)[-1]


@recorded
def check_retry(
    history: HistoryLike,
    *,
    source: str | None = None,
    attempts: int | None = None,
    backoff: Backoff | None = None,
    jitter: str = "full",
    deadline: float | None = None,
    not_retryable: Sequence[type[BaseException] | str] = (),
    fallback: object = NO_FALLBACK,
    tolerance: float = 1e-9,
    significance: float = 1e-6,
) -> Verdict:
    """Judge every retried call in ``history`` (of ``source``, or of every retry).

    ``attempts``: the most attempts a call may make. ``backoff`` + ``jitter``: each wait
    must lie in the envelope (full: [0, d], equal: [d/2, d], none: d, decorrelated:
    [base, max]) and the next attempt must not start before the wait has passed on the
    clock. ``deadline``: no wait may end past the deadline, counted from the call's start.
    ``not_retryable``: an error of these classes (or class names) ends the call.
    ``fallback``: the value a retrying function returns on purpose when it gives up (by
    default it must raise; see the module docstring). With ``jitter="full"`` and a
    ``backoff``, a source whose delays are all so short that U(0, d) draws would be that
    short with probability below ``significance`` fails too.
    """
    if jitter not in JITTERS:
        raise ValueError(f"jitter={jitter!r} is not a jitter mode. Pass one of {JITTERS}.")
    if not 0 < significance < 1:
        raise ValueError(f"significance={significance!r} is not a probability. Pass a number "
                         "in (0, 1), such as 1e-6.")
    blocked = {n if isinstance(n, str) else n.__name__ for n in not_retryable}
    events = select(history, "")
    found = _component_calls([e for e in events if e.kind.startswith("retry.")
                              and (source is None or e.source == source)])
    for name, observed in _observed_calls(events, source).items():
        found.setdefault(name, []).extend(observed)
    n_calls = sum(len(c) for c in found.values())
    for name, per_source in found.items():
        for index, call in enumerate(per_source, 1):
            problem = _judge(call, attempts=attempts, backoff=backoff, jitter=jitter,
                             deadline=deadline, blocked=blocked, fallback=fallback,
                             tol=tolerance)
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
        f"{n_calls} retried call(s) from {sorted(found) or 'no source'} kept the attempt "
        "limit, the backoff envelope, the deadline, the non-retryable rule and raised when "
        "they gave up"
        + (", with delays long enough for full jitter." if jitter == "full" and backoff
           else "."),
    )


def _judge(
    call: _Retried,
    *,
    attempts: int | None,
    backoff: Backoff | None,
    jitter: str,
    deadline: float | None,
    blocked: set[str],
    fallback: object,
    tol: float,
) -> tuple[str, list[Event]] | None:
    tries = call.tries
    if attempts is not None and len(tries) > attempts:
        return (f"made {len(tries)} attempts, more than the limit of {attempts}",
                [tries[attempts].event])
    pending: _Wait | None = None
    last_error: _Try | None = None
    for item in call.items:
        if isinstance(item, _Try):
            if last_error is not None and last_error.error in blocked:
                return (f"was retried after a non-retryable error "
                        f"{last_error.event.attrs.get('error')}", [last_error.event, item.event])
            if last_error is not None and backoff is not None:
                if pending is None:
                    return ("retried without sleeping for the backoff",
                            [last_error.event, item.event])
                waited = item.begun - pending.event.time
                if waited + tol < pending.delay:
                    return (f"finished the next attempt {waited:.6g}s after announcing a "
                            f"{pending.delay:.6g}s sleep, so it did not wait",
                            [pending.event, item.event])
            pending = None
            last_error = None if item.ok else item
            continue
        pending = item
        if backoff is not None:
            low, high = _envelope(backoff, jitter, item.retry)
            if not low - tol <= item.delay <= high + tol:
                return (f"slept {item.delay:.6g}s before retry {item.retry}, outside the "
                        f"{jitter}-jitter envelope [{low:.6g}, {high:.6g}]s", item.events)
        ends = item.event.time + item.delay - call.start
        if deadline is not None and ends > deadline + tol:
            return (f"planned a wait ending {ends:.6g}s after the start, past the "
                    f"{deadline:.6g}s deadline", [item.event])
    return _gave_up_quietly(call, tries, fallback)


def _gave_up_quietly(call: _Retried, tries: list[_Try],
                     fallback: object) -> tuple[str, list[Event]] | None:
    """A retrying function that returned after its last attempt failed."""
    end = call.outcome
    if end is None or not tries or tries[-1].ok or end.attrs.get("outcome") != "ok":
        return None
    value = end.attrs.get("value")
    if fallback is not NO_FALLBACK and value == short(fallback):
        return None
    declared = "" if fallback is NO_FALLBACK else f" (the declared fallback is {short(fallback)})"
    return (f"gave up after {len(tries)} attempt(s) and {end.attrs.get('function')} returned "
            f"{value} instead of raising: the last error ({tries[-1].error}) was "
            f"swallowed{declared}. Raise it, or declare fallback= if returning that value is "
            "intended", [tries[-1].event, end])


def _too_short(name: str, calls: list[_Retried], backoff: Backoff, deadline: float | None,
               significance: float) -> Verdict | None:
    """Fail ``name`` when its full-jitter delays are implausibly short (m**n < significance).

    A sleep's cap is its nominal delay d, or the time left before ``deadline`` when that is
    shorter: a retry emits only the delays that fit, which are uniform below that cap.
    """
    ratios: list[tuple[float, Event]] = []
    for call in calls:
        for wait in call.waits:
            cap = backoff.delay(wait.retry)
            if deadline is not None:
                cap = min(cap, deadline - (wait.event.time - call.start))
            if cap > 0:
                ratios.append((wait.delay / cap, wait.event))
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
