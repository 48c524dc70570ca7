"""The checks ``run_chaos`` and ``replay`` make on their arguments, at the call: a wrong
value is refused before any plan runs (inside a Hypothesis run it would surface as a
failing plan, or as Hypothesis' own error), with the standard message of
``pytest_resilience.validate``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faults import FaultPlan
from pytest_resilience import validate

if TYPE_CHECKING:
    from pytest_resilience.sla import Budget

__all__ = ["Common", "check_plan", "common", "run_only"]

_BUDGETS = "budget strings such as 'search:p95<200ms', or sla.Budget objects"


@dataclass(frozen=True)
class Common:
    """The arguments ``run_chaos`` and ``replay`` share, checked and normalised."""

    checks: tuple[Callable[..., Any], ...]
    allow: tuple[type[BaseException], ...]
    budgets: list[Budget]


def common(*, body: object, checks: object, allow: object, maximize: object,
           around_plan: object, replay_command: object) -> Common:
    """Check what both entry points take; ``TypeError``/``ValueError`` naming the
    argument."""
    validate.check(callable(body) and _takes_one(body), "body", body,
                   what="a function of the run",
                   accepted="a function of the run: body(run), sync or async",
                   kind=TypeError)
    validate.callable_or_none(around_plan, "around_plan",
                              accepted="a function returning a context manager, or None")
    validate.callable_or_none(replay_command, "replay_command",
                              accepted="a function of the failing FaultPlan returning "
                                       "text, or None")
    return Common(
        checks=validate.callables(checks, "checks", accepted="a list of checkers: functions "
                                  "of the run's History returning a Verdict"),
        allow=_allow(allow), budgets=_budgets(maximize))


def _takes_one(fn: Any) -> bool:
    """Whether ``fn(run)`` binds (``True`` when the signature cannot be read)."""
    try:
        inspect.signature(fn).bind(None)
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): let the call decide
        return True
    return True


def _allow(allow: object) -> tuple[type[BaseException], ...]:
    items = tuple(allow) if isinstance(allow, Iterable) and not isinstance(
        allow, str | bytes) else (allow,)
    validate.check(all(isinstance(t, type) and issubclass(t, BaseException) for t in items),
                   "allow", allow, what="a list of exception classes",
                   accepted="the exception classes the body may raise, e.g. [TimeoutError]",
                   kind=TypeError)
    return items


def _budgets(maximize: object) -> list[Budget]:
    if isinstance(maximize, str | bytes) or not isinstance(maximize, Iterable):
        raise TypeError(f"maximize={validate.show(maximize)} is not a list of budgets. "
                        f"Pass {_BUDGETS}.")
    items = list(maximize)
    if not items:
        return []
    from pytest_resilience.sla import Budget  # sla is imported only when asked for

    budgets = []
    for item in items:
        if isinstance(item, Budget):
            budgets.append(item)
        elif isinstance(item, str):
            try:
                budgets.append(Budget.parse(item))
            except ValueError as exc:
                raise ValueError(f"maximize=[..., {validate.show(item)}] is not a budget: "
                                 f"{exc}") from None
        else:
            raise TypeError(f"maximize=[..., {validate.show(item)}] holds something that is "
                            f"not a budget. Pass {_BUDGETS}.")
    return budgets


def run_only(*, max_examples: object, seed: object, must_fire: object, sometimes: object,
             require_coverage: object, on_plan: object, database_key: object,
             ) -> tuple[int, int | None, tuple[str, ...], tuple[str, ...],
                        tuple[tuple[str, ...], ...], str]:
    """Check what only ``run_chaos`` takes; returns them in that order (``on_plan``
    aside)."""
    validate.callable_or_none(on_plan, "on_plan",
                              accepted="a function of (plans_run, failures), or None")
    return (validate.count(max_examples, "max_examples", what="a number of plans"),
            validate.seed(seed),
            _names(must_fire, "must_fire", what="failpoint or fault source names",
                   example="db.write"),
            _names(sometimes, "sometimes", what="property names", example="cache warmed"),
            _cells(require_coverage),
            validate.text(database_key, "database_key", empty=True, what="a key"))


def _names(value: object, name: str, *, what: str, example: str) -> tuple[str, ...]:
    """A list of names (``must_fire``, ``sometimes``) as a tuple of strings."""
    items = tuple(value) if isinstance(value, Iterable) and not isinstance(
        value, str | bytes) else None
    if items is None or not all(isinstance(item, str) and item for item in items):
        raise (ValueError if items is not None and all(isinstance(i, str) for i in items)
               else TypeError)(f"{name}={validate.show(value)} is not a list of {what}. Pass "
                               f"a list of non-empty strings, e.g. [{example!r}].")
    return items


def _cells(value: object) -> tuple[tuple[str, ...], ...]:
    """``require_coverage``: cells of two or three non-empty names (operation, family and
    optionally property)."""
    items = tuple(value) if isinstance(value, Iterable) and not isinstance(
        value, str | bytes) else None
    found = [tuple(c) if isinstance(c, Iterable) and not isinstance(c, str | bytes) else None
             for c in items or ()]
    if items is None or not all(c is not None and 2 <= len(c) <= 3
                                and all(isinstance(n, str) and n for n in c) for c in found):
        raise TypeError(f"require_coverage={validate.show(value)} is not a list of coverage "
                        "cells. Pass (operation, family) or (operation, family, property) "
                        "tuples of names, e.g. [('search', 'network')].")
    return tuple(c for c in found if c is not None)


def check_plan(plan: object) -> FaultPlan:
    """``plan`` when it is a ``FaultPlan``."""
    validate.check(isinstance(plan, FaultPlan), "plan", plan, what="a fault plan",
                   accepted="a faults.FaultPlan, e.g. faults.FaultPlan.from_json(text) with "
                            "the plan a ChaosFailure printed", kind=TypeError)
    return plan  # type: ignore[return-value]
