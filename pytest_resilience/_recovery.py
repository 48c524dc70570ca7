"""Recovery-time budgets (liveness): once the faults are lifted, how long until an operation
is back inside its budgets.

A *fault window* is a stretch of the history in which at least one fault is active (from
a source's ``fault.armed`` to its ``fault.disarmed``). After each window closes, the
operation's ``sla.sample`` events up to the next window are read in order; it has
recovered at the first sample that meets the budget on its own (fast enough, or not an
error) and together with every later one (the budget computed exactly over them: a
nearest-rank percentile, the error rate, ...). Its time to recover runs from the end of
the window to the end of the sample before that one (0 when the first sample after the
window already qualifies), so a slow warm-up after a fault counts in full even when a
long healthy tail would hide it in a percentile. Times are the history's (virtual, in
tests).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_resilience._errors import BudgetExceeded
from pytest_resilience._events import History, emit
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED, SLA_BUDGET, SLA_SAMPLE
from pytest_resilience.sla._budgets import Budget, format_seconds
from pytest_resilience.sla._exact import Sample, exact_figure

__all__ = ["fault_windows", "judge_recovery", "parse_duration", "recovery_times"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ns|us|ms|s|min)\s*")


def parse_duration(value: object, name: str = "recovery") -> float:
    """Seconds from a number (seconds) or a string with a unit (``"500ms"``, ``"5s"``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{name}={value!r} is not a duration. Pass seconds (5) or a string "
                         "with a unit: '500ms', '5s', '2min'.")
    return seconds


def fault_windows(history: Iterable[Any]) -> list[tuple[float, float | None]]:
    """The stretches in which at least one fault was active: ``(start, end)``, ``end``
    ``None`` for one still open when the history ends."""
    active: dict[str, int] = {}
    windows: list[tuple[float, float | None]] = []
    start: float | None = None
    for event in history:
        if event.kind == FAULT_ARMED:
            if start is None:
                start = event.time
            active[event.source] = active.get(event.source, 0) + 1
        elif event.kind == FAULT_DISARMED and active.get(event.source):
            active[event.source] -= 1
            if start is not None and not any(active.values()):
                windows.append((start, event.time))
                start = None
    if start is not None:
        windows.append((start, None))
    return windows


def _meets(budget: Budget, samples: Sequence[Sample]) -> bool:
    figure = exact_figure(budget, samples)
    return figure is not None and budget.check(figure, samples=10**9).passed is True


def _recovered_after(budget: Budget, samples: Sequence[Sample], lifted: float) -> float | None:
    """Seconds from ``lifted`` to the end of the sample before the first one that meets
    the budget on its own and together with every later one; ``None`` if none does."""
    for i in range(len(samples)):
        if _meets(budget, samples[i:i + 1]) and _meets(budget, samples[i:]):
            return max(0.0, samples[i - 1][2] - lifted) if i else 0.0
    return None


def recovery_times(history: Iterable[Any], budgets: Sequence[Budget]) -> list[dict[str, Any]]:
    """Per budget and closed fault window: ``{"budget", "operation", "window": [start,
    end], "samples", "recovered_after"}`` (seconds, or ``None``: never back inside)."""
    events = list(history)
    windows = fault_windows(events)
    out = []
    for budget in budgets:
        if budget.metric == "throughput":
            continue
        timed = [(float(e.attrs["seconds"]), bool(e.attrs["ok"]), float(e.time))
                 for e in events if e.kind == SLA_SAMPLE
                 and (budget.operation is None or e.source == budget.operation)]
        for n, (start, end) in enumerate(windows):
            if end is None:
                continue
            until = windows[n + 1][0] if n + 1 < len(windows) else math.inf
            after = [s for s in timed if end < s[2] <= until]
            out.append({
                "budget": budget.text, "operation": budget.operation, "window": [start, end],
                "samples": len(after),
                "recovered_after": _recovered_after(budget, after, end) if after else None,
            })
    return out


def judge_recovery(history: History, budgets: Sequence[Budget], within: float, *,
                   source: str = "test") -> BudgetExceeded | None:
    """Judge each budget's recovery against ``within`` seconds: one ``sla.budget`` event
    per budget in ``history`` (``metric="recovery"``, ``windows`` holding each fault
    window's time to recover), and the ``BudgetExceeded`` naming every one not met (to
    raise), or ``None``."""
    times = recovery_times(history, budgets)
    open_window = any(end is None for _, end in fault_windows(history))
    failed: list[tuple[str, float | None, str]] = []
    judged = 0
    for budget in budgets:
        if budget.metric == "throughput":
            continue
        judged += 1
        mine = [t for t in times if t["budget"] == budget.text]
        text = f"{budget.text}, recovery<{format_seconds(within)}"
        late = [t for t in mine if t["recovered_after"] is None
                or t["recovered_after"] > within]
        observed = max((t["recovered_after"] for t in mine
                        if t["recovered_after"] is not None), default=None)
        passed = (not late) if mine else None
        reason = _reason(budget, mine, late, within, open_window)
        emit(SLA_BUDGET, source, history=history, budget=text, metric="recovery",
             operation=budget.operation, threshold=within, observed=observed, passed=passed,
             reason=reason, windows=mine)
        if passed is not True:
            failed.append((text, observed, reason))
    if not failed:
        return None
    lines = "\n".join(f"  {reason}" for _, _, reason in failed)
    return BudgetExceeded(f"{len(failed)} of {judged} recovery budget(s) not met:\n{lines}",
                          budget=failed[0][0], observed=failed[0][1])


def _reason(budget: Budget, mine: list[dict[str, Any]], late: list[dict[str, Any]],
            within: float, open_window: bool) -> str:
    bound = format_seconds(within)
    if not mine:
        why = ("a fault was still active when the budget was checked: lift it inside the "
               "test (a `with` block)" if open_window else "no fault was lifted in the test")
        return f"{budget.text}: recovery not measured, {why}"
    worst = late[0] if late else max(mine, key=lambda t: t["recovered_after"])
    start, end = worst["window"]
    where = f"the fault window t={start:g}s..{end:g}s"
    if worst["recovered_after"] is None:
        if not worst["samples"]:
            return (f"{budget.text}: no sample after {where} ended, so recovery within "
                    f"{bound} is not shown")
        return (f"{budget.text}: still outside the budget at the last of "
                f"{worst['samples']} samples after {where}")
    took = format_seconds(worst["recovered_after"]) if worst["recovered_after"] else "0s"
    verb = "breaks" if late else "within"
    return f"{budget.text}: back inside {took} after {where} ({verb} recovery<{bound})"
