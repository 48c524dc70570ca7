"""A hang is a failure, fast and explained (issue 16).

Three limits, all served by one real-time watchdog (``pytest_resilience._watchdog``):

- **a test's limit is pytest-timeout's** (``@pytest.mark.timeout(s)``, ``--timeout``, ini
  ``timeout``). With its ``signal`` method this plugin takes over pytest-timeout's
  ``pytest_timeout_set_timer`` hook: the test fails when its limit runs out with the faults
  active in its history (which toxic, since when) and the stack of the blocked thread,
  instead of a dump of every thread. pytest-timeout's ``thread`` method (and any test run
  off the main thread) is left to pytest-timeout, which dumps the stacks and ends the
  process. pytest's own ``faulthandler_timeout`` only dumps stacks; it never fails a test.
- **a chaos plan's deadline**: ``@pytest.mark.chaos(deadline=s)``, default ini
  ``resilience_chaos_deadline``; a plan whose body runs longer fails with
  ``HangDetected``, and the chaos run shrinks to the smallest plan that hangs.
- **SLA ``max<`` budgets** stop a measurement once it has run that long (real clock).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_resilience.chaos import ChaosRun
    from pytest_resilience.sla import Budget

CHAOS_DEADLINE_INI = "resilience_chaos_deadline"
_LIMIT = pytest.StashKey[ExitStack]()


class _Interrupted(BaseException):
    """Raised by the watchdog into a blocked body (not an ``Exception``: code under test
    that catches ``Exception`` cannot swallow it)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(CHAOS_DEADLINE_INI, "default deadline, in seconds of real time, of one "
                  "chaos plan's body (@pytest.mark.chaos(deadline=...)); empty: none",
                  default="")


# -- pytest-timeout ------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """Enforce pytest-timeout's limit with the watchdog, so the failure names the faults."""
    if settings.method != "signal":
        return None
    from pytest_resilience._watchdog import WATCHDOG

    stack = ExitStack()
    enforced = stack.enter_context(WATCHDOG.limit(
        float(settings.timeout), lambda frame: _timed_out(item, settings, frame)))
    if not enforced:
        stack.close()
        return None  # off the main thread: pytest-timeout's own timer
    item.stash[_LIMIT] = stack
    return True


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool | None:
    """Lift the limit set above (pytest-timeout's own cancel handles the rest)."""
    stack = item.stash.get(_LIMIT, None)
    if stack is None:
        return None
    del item.stash[_LIMIT]
    stack.close()
    return True


def _timed_out(item: pytest.Item, settings: Any, frame: FrameType | None) -> None:
    __tracebackhide__ = True
    import pytest_timeout

    if not settings.disable_debugger_detection and pytest_timeout.is_debugging():
        return
    from pytest_resilience._events import active_history
    from pytest_resilience._watchdog import explain

    history = active_history() or getattr(item, "funcargs", {}).get("history")
    limit = f"{float(settings.timeout):g}s"
    raise pytest.fail.Exception(explain(
        f"Timeout (>{limit}) from pytest-timeout: {item.nodeid} was blocked for more than "
        f"its {limit} limit.", frame, history), pytrace=False)


# -- the chaos marker's deadline -----------------------------------------------------------
def chaos_deadline(item: pytest.Item, settings: Mapping[str, Any],
                   body: Callable[[ChaosRun], Any]) -> Callable[[ChaosRun], Any]:
    """``body`` bounded by the marker's ``deadline=`` (or the ini default) per plan."""
    deadline = _deadline(item, settings)
    if deadline is None:
        return body

    def bounded(run: ChaosRun) -> Any:
        from pytest_resilience._watchdog import WATCHDOG, HangDetected, explain

        def expired(frame: FrameType | None) -> None:
            raise _Interrupted(explain(
                f"A chaos plan's body was blocked for more than its {deadline:g}s deadline "
                f"(@pytest.mark.chaos(deadline=...), ini {CHAOS_DEADLINE_INI}).", frame,
                run.history))

        try:
            with WATCHDOG.limit(deadline, expired):
                outcome = body(run)
                if inspect.isawaitable(outcome):
                    import asyncio  # not at import: loading the plugin must stay cheap

                    outcome = asyncio.run(_awaited(outcome))
                return outcome
        except _Interrupted as hung:
            raise HangDetected(str(hung.args[0])) from None

    return bounded


async def _awaited(outcome: Any) -> Any:
    return await outcome


def _deadline(item: pytest.Item, settings: Mapping[str, Any]) -> float | None:
    if "deadline" in settings:
        value, where = settings["deadline"], "@pytest.mark.chaos(deadline=...)"
    else:
        value, where = item.config.getini(CHAOS_DEADLINE_INI) or None, CHAOS_DEADLINE_INI
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        pytest.fail(f"{where}: {value!r} is not a deadline. Pass seconds > 0, or None for "
                    "no deadline.", pytrace=False)
    return seconds


# -- SLA max budgets -----------------------------------------------------------------------
@contextmanager
def stop_past_max(operation: str, budget: Budget) -> Iterator[None]:
    """The ``sla`` fixture's ``abort``: a measurement stops once it has run ``budget``'s
    threshold (the recorder records it and raises ``BudgetExceeded``)."""
    from pytest_resilience._watchdog import WATCHDOG
    from pytest_resilience.sla._recorder import overrun

    def expired(frame: FrameType | None) -> None:
        raise _Interrupted(operation)

    try:
        with WATCHDOG.limit(budget.threshold, expired):
            yield
    except _Interrupted:
        raise overrun(operation, budget) from None
