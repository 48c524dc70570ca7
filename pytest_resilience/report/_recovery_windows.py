"""Time to recover per fault window, as the HTML and Markdown reports list it under a
recovery budget's verdict (``metric == "recovery"``, whose ``windows`` report.json keeps)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_resilience.sla._budgets import format_seconds

__all__ = ["recovery_windows"]


def recovery_windows(verdict: Mapping[str, Any]) -> list[str]:
    """One line per fault window of a recovery verdict: its span on the test's clock and
    the time to get back inside the budget (or "not recovered"); ``[]`` for any other
    budget."""
    if verdict.get("metric") != "recovery":
        return []
    within = float(verdict["threshold"])
    lines = []
    for window in verdict.get("windows") or []:
        start, end = window["window"]
        span = f"t={start:g}s..{end:g}s"
        took = window["recovered_after"]
        if took is None:
            why = (f"still outside the budget at the last of {window['samples']} samples"
                   if window["samples"] else "no sample after the window")
            lines.append(f"{span}: not recovered ({why})")
            continue
        lines.append(f"{span}: back inside {format_seconds(took) if took else '0s'}"
                     + (f" (over {format_seconds(within)})" if took > within else ""))
    return lines
