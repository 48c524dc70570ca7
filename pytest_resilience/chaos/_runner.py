"""The chaos runner: run a body once per generated fault plan, judge each history, shrink a
failure to the smallest plan and say how to replay it.

Every fault decision is drawn from Hypothesis (the plan itself, and each ``rate``
trigger's coin through ``DrawnRandom``) and every wait is virtual (``ChaosClock``), so
runs are deterministic, fast, and shrink to the true minimum.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_resilience._events import History, recording
from pytest_resilience.chaos._clock import ChaosClock
from pytest_resilience.chaos._decisions import DrawnRandom, ReplayRandom
from pytest_resilience.checks._verdict import CheckFailed, Verdict
from pytest_resilience.kinds import FAULT_ARMED, FAULT_FIRED

if TYPE_CHECKING:
    import random

    from hypothesis.database import ExampleDatabase

    from faults import ActivePlan
    from faults.strategies import ChaosPlan, Family

__all__ = [
    "ChaosFailure",
    "ChaosResult",
    "ChaosRun",
    "ChaosVacuous",
    "Check",
    "replay",
    "run_chaos",
]

Check = Callable[[History], Verdict]
Body = Callable[["ChaosRun"], Any]
_LAST_EVENTS = 12


@dataclass
class ChaosRun:
    """What the body gets for one plan: the plan, its clock and history, the armed
    failpoints, and ``sometimes`` / ``reached`` to mark recovery paths."""

    plan: ChaosPlan
    clock: ChaosClock
    history: History
    active: ActivePlan
    rng: random.Random
    reached_names: set[str] = field(default_factory=set)

    def sometimes(self, condition: bool, name: str) -> bool:
        """Mark ``name`` reached when ``condition`` holds; returns ``condition``.

        A run with ``sometimes=[name]`` fails if no plan ever reached it.
        """
        if condition:
            self.reached_names.add(name)
        return condition

    def reached(self, name: str) -> None:
        """Mark ``name`` reached (Antithesis' ``reachable``)."""
        self.reached_names.add(name)

    def fired(self, name: str | None = None) -> int:
        """How many failpoint faults fired (at ``name``, or anywhere) in this plan."""
        return self.active.fired(name)

    def check(self, verdict: Verdict) -> Verdict:
        """Fail this plan unless ``verdict`` passed."""
        return verdict.assert_ok()


class ChaosFailure(AssertionError):
    """A plan broke the body or a checker: holds the minimal ``plan``, its ``history``,
    the ``error``, the ``replay`` instructions, the plans run (shrinking included) and
    ``found_at``, the number of the first plan that failed."""

    def __init__(self, message: str, *, plan: ChaosPlan, history: History,
                 error: BaseException, plans_run: int, found_at: int,
                 replay_command: str) -> None:
        super().__init__(message)
        self.plan = plan
        self.history = history
        self.error = error
        self.plans_run = plans_run
        self.found_at = found_at
        self.replay_command = replay_command


class ChaosVacuous(AssertionError):
    """Every plan passed, but a fault that must fire or a path that must be reached
    never was: the run proved nothing about it."""


@dataclass
class ChaosResult:
    """What a chaos run did: plans run, faults fired per source, names reached, failing
    plans and the number of the first one (0: none failed)."""

    plans: int = 0
    fired: Counter[str] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    found_at: int = 0


def _families(families: Iterable[Family | str]) -> list[Family]:
    from faults._strategies import resolve_families

    return resolve_families(families)


def _execute(
    body: Body,
    plan: ChaosPlan,
    rng: random.Random,
    families: Sequence[Family],
    *,
    checks: Sequence[Check],
    allow: tuple[type[BaseException], ...],
) -> tuple[ChaosRun, Exception | None]:
    """Run ``body`` once under ``plan``; the run and what failed (the body or a checker).

    Families' per-run set-up (``PerRun.around``) and every applied fault are undone when
    the run ends, before the next plan."""
    import faults
    from faults.strategies import PerRun

    history = History()
    with recording(history), ExitStack() as stack:
        clock = ChaosClock(plan.scheduled, {f.name: f for f in families},
                           history=history, stack=stack)
        for family in families:
            if isinstance(family, PerRun):
                stack.enter_context(family.around(clock=clock, history=history))
        active = stack.enter_context(faults.activate(
            plan.failpoint_plan(), clock=clock, history=history, rng=rng))
        run = ChaosRun(plan, clock, history, active, rng)
        try:
            clock.start()  # faults scheduled at t=0 apply before the body
            outcome = body(run)
            if inspect.isawaitable(outcome):
                asyncio.run(_await(outcome))
            elif isinstance(outcome, Verdict):
                outcome.assert_ok()
        except allow:
            pass
        except Exception as exc:
            return run, exc
    try:
        for check in checks:
            check(history).assert_ok()
    except CheckFailed as exc:
        return run, exc
    return run, None


async def _await(awaitable: Any) -> None:
    result = await awaitable
    if isinstance(result, Verdict):
        result.assert_ok()


def _fired(history: History) -> Counter[str]:
    """Faults that took effect, by source: ``fault.fired`` events, and family injectors'
    ``fault.armed`` events (a failpoint plan's own ``fault.armed`` is not a fault)."""
    counts: Counter[str] = Counter()
    for event in history.snapshot():
        fired = event.kind == FAULT_FIRED
        if fired or (event.kind == FAULT_ARMED and event.source != "faults"):
            counts[event.source.removeprefix("failpoint:")] += 1
    return counts


def _message(plan: ChaosPlan, history: History, error: BaseException, *, plans_run: int,
             found_at: int, command: str) -> str:
    if isinstance(error, CheckFailed):
        verdict = error.verdict
        what = f"checker {verdict.checker!r} found a violation:\n  {verdict.explanation}"
    else:
        what = f"the body raised {type(error).__name__}: {error}"
    tail = history.snapshot()[-_LAST_EVENTS:]
    events = "\n".join(
        f"  #{e.seq} t={e.time:g} {e.kind} [{e.source}] "
        + ", ".join(f"{k}={v!r}" for k, v in e.attrs.items())
        for e in tail
    )
    return (
        f"chaos: after {plans_run} plan(s)"
        + (f" (plan {found_at} failed first, the rest shrank it)" if plans_run > found_at
           else "")
        + f", {what}\n"
        f"minimal fault plan ({len(plan)} fault(s)):\n{plan.to_json(indent=2)}\n"
        f"last {len(tail)} of {len(history)} events:\n{events}\n"
        f"replay: {command}"
    )


def _default_command(plan: ChaosPlan) -> str:
    return ("pytest_resilience.chaos.replay(body, ChaosPlan.from_json("
            f"{plan.to_json()!r}))")


def run_chaos(
    body: Body,
    *,
    families: Iterable[Family | str] = ("clock",),
    max_faults: int = 4,
    horizon: float = 10.0,
    calls: int = 10,
    max_examples: int = 100,
    seed: int | None = None,
    checks: Sequence[Check] = (),
    allow: Sequence[type[BaseException]] = (),
    must_fire: Sequence[str] = (),
    sometimes: Sequence[str] = (),
    replay_command: Callable[[ChaosPlan], str] | None = None,
    database: ExampleDatabase | None = None,
    database_key: str = "",
    on_plan: Callable[[int, int], object] | None = None,
) -> ChaosResult:
    """Run ``body(run)`` once per fault plan generated from ``families``.

    A plan fails when the body raises (exceptions in ``allow`` are expected outcomes),
    returns a failing ``Verdict``, or a checker in ``checks`` (called with the plan's
    history) fails. The first failure is shrunk to the smallest plan and raised as
    ``ChaosFailure``, whose message holds the plan as JSON and ``replay_command(plan)``.
    When every plan passes, each name in ``must_fire`` (a failpoint or a fault source
    such as ``"clock"``) must have fired and each name in ``sometimes`` must have been
    reached in some plan, else ``ChaosVacuous`` is raised. With ``database`` (a
    Hypothesis example database) failing plans are saved under ``database_key`` and
    replayed first by later runs that share it. ``on_plan(plans_run, failures)`` is
    called after each plan (shrinking included), e.g. to show progress.
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from faults.strategies import fault_plans

    chosen = _families(families)
    strategy = fault_plans(chosen, max_faults=max_faults, horizon=horizon, calls=calls)
    allowed = tuple(allow)
    result = ChaosResult()
    last: list[tuple[ChaosPlan, History, BaseException]] = []

    @settings(max_examples=max_examples, deadline=None, database=database,
              report_multiple_bugs=False, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def explore(data: Any) -> None:
        plan = data.draw(strategy, label="fault plan")
        rng = DrawnRandom(data)
        result.plans += 1
        run, error = _execute(body, plan, rng, chosen, checks=checks, allow=allowed)
        if error is not None:
            result.failures += 1
            result.found_at = result.found_at or result.plans
            last.append((plan.with_decisions(rng.decisions), run.history, error))
            if on_plan is not None:
                on_plan(result.plans, result.failures)
            raise error
        if on_plan is not None:
            on_plan(result.plans, result.failures)
        result.fired.update(_fired(run.history))
        result.reached.update(run.reached_names)

    explore.hypothesis.inner_test._hypothesis_internal_add_digest = (  # type: ignore[attr-defined]
        database_key.encode())  # one corpus entry per test, not one for every chaos test
    if seed is not None:
        explore = hypothesis_seed(seed)(explore)
        if database is not None:  # @seed turns the database off; here it is the point
            explore._hypothesis_internal_use_settings = settings(  # type: ignore[attr-defined]
                explore._hypothesis_internal_use_settings,  # type: ignore[attr-defined]
                database=database)
    try:
        explore()
    except Exception as exc:
        if not last:
            raise
        plan, history, error = last[-1]
        command = (replay_command or _default_command)(plan)
        message = _message(plan, history, error, plans_run=result.plans,
                           found_at=result.found_at, command=command)
        raise ChaosFailure(message, plan=plan,
                           history=history, error=error, plans_run=result.plans,
                           found_at=result.found_at,
                           replay_command=command) from exc
    _check_vacuity(result, must_fire, sometimes)
    return result


def _check_vacuity(result: ChaosResult, must_fire: Sequence[str],
                   sometimes: Sequence[str]) -> None:
    never = [n for n in must_fire if not result.fired[n]]
    unreached = [n for n in sometimes if not result.reached[n]]
    if never or unreached:
        parts = []
        if never:
            parts.append(f"fault(s) {never} never fired")
        if unreached:
            parts.append(f"path(s) {unreached} were never reached")
        raise ChaosVacuous(
            f"chaos: {result.plans} plan(s) passed, but {' and '.join(parts)}, so the run "
            "proved nothing about them. Check the failpoint names, raise max_faults or "
            "calls, or add plans that reach the path."
        )


def replay(
    body: Body,
    plan: ChaosPlan,
    *,
    families: Iterable[Family | str] = ("clock",),
    checks: Sequence[Check] = (),
    allow: Sequence[type[BaseException]] = (),
    replay_command: Callable[[ChaosPlan], str] | None = None,
) -> ChaosRun:
    """Run ``body`` once under ``plan``, repeating its recorded decisions exactly.

    Returns the run when it passes; raises ``ChaosFailure`` (with the run's history) when
    it fails, as the original failure did.
    """
    chosen = _families(families)
    known = {f.name for f in chosen}
    missing = dict.fromkeys(s.family for s in plan.scheduled if s.family not in known)
    if missing:
        from faults._strategies import family_named

        chosen += [family_named(name) for name in missing]
    run, error = _execute(body, plan, ReplayRandom(plan.decisions), chosen, checks=checks,
                          allow=tuple(allow))
    if error is None:
        return run
    command = (replay_command or _default_command)(plan)
    message = _message(plan, run.history, error, plans_run=1, found_at=1, command=command)
    raise ChaosFailure(message, plan=plan,
                       history=run.history, error=error, plans_run=1, found_at=1,
                       replay_command=command) from error
