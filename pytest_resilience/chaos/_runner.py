"""The chaos runner: run a body once per generated fault plan, judge each history, shrink a
failure to the smallest plan and say how to replay it.

Every fault decision is drawn from Hypothesis (the plan itself, each ``rate`` trigger's
coin and each ``chaos.rng`` draw) and every wait is virtual (a ``VirtualClock`` whose
alarm applies the plan's scheduled faults on time), so runs are deterministic, fast, and
shrink to the true minimum. ``replay`` runs one saved plan without Hypothesis.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

import faults
from faults import FaultPlan
from faults.families import Family, PerRun, family_named, resolve_families
from pytest_resilience import History, VirtualClock, emit, recording
from pytest_resilience._coverage import coverage_matrix, empty, merge
from pytest_resilience.chaos._decisions import (
    BodyRandom,
    DrawnRandom,
    ReplayBodyRandom,
    ReplayRandom,
    drawn_body_random,
)
from pytest_resilience.chaos._schedule import FaultSchedule
from pytest_resilience.checks import CheckFailed, Verdict
from pytest_resilience.kinds import (
    CHECK_VERDICT,
    FAULT_ARMED,
    FAULT_FIRED,
    SLA_BUDGET,
    SLA_SAMPLE,
)

if TYPE_CHECKING:
    import random

    from hypothesis.database import ExampleDatabase

    from faults import ActivePlan
    from pytest_resilience.sla import Budget, Measurement, SLARecorder

__all__ = [
    "BudgetBroken",
    "ChaosFailure",
    "ChaosResult",
    "ChaosRun",
    "ChaosVacuous",
    "Check",
    "PropertyFailed",
    "replay",
    "run_chaos",
]

Check = Callable[[History], Verdict]
Body = Callable[["ChaosRun"], Any]
AroundPlan = Callable[[], AbstractContextManager[Any]]
_LAST_EVENTS = 12

#: Health checks a chaos run must switch off, and why; every other one stays on.
SUPPRESSED_HEALTH_CHECKS = {
    "data_too_large": "a body that reaches a rate-triggered failpoint (or chaos.rng) many "
                      "times draws one decision per call, which can exceed Hypothesis' "
                      "buffer for a legitimate plan",
    "large_base_example": "for the same reason even the simplest plan of such a body is "
                          "large",
}


class PropertyFailed(AssertionError):
    """``chaos.always(condition, name)`` saw ``condition`` false."""


class BudgetBroken(AssertionError):
    """The plan broke the budget an adversarial search was after."""

    def __init__(self, message: str, *, budget: Budget, observed: float) -> None:
        super().__init__(message)
        self.budget = budget
        self.observed = observed


@final
@dataclass
class ChaosRun:
    """What the body gets for one plan: the plan, its virtual clock and history, the armed
    failpoints, ``rng`` (draws that shrink toward the simplest value), and the
    properties: ``always``, ``sometimes``, ``reached``. ``measure(op)`` times one call
    of ``op`` on the plan's clock (an adversarial search judges these)."""

    plan: FaultPlan
    clock: VirtualClock
    history: History
    active: ActivePlan
    rng: random.Random
    properties: dict[str, list[Any]] = field(default_factory=dict)
    _sla: SLARecorder | None = None

    def always(self, condition: bool, name: str) -> bool:
        """Fail this plan (and shrink it) unless ``condition`` holds; checked in every plan
        that reaches it. Returns ``condition``."""
        entry = self._property(name, "always")
        entry[1 if condition else 2] += 1
        if not condition:
            raise PropertyFailed(f"always {name!r} was false")
        return condition

    def sometimes(self, condition: bool, name: str) -> bool:
        """Count ``condition``; the run fails if ``name`` never held in any plan (it was
        never reached, or never true). Returns ``condition``."""
        entry = self._property(name, "sometimes")
        entry[1 if condition else 2] += 1
        return condition

    def reached(self, name: str) -> None:
        """``sometimes(True, name)`` (Antithesis' ``reachable``)."""
        self.sometimes(True, name)

    @property
    def reached_names(self) -> set[str]:
        """Names whose ``sometimes`` held in this plan."""
        return {n for n, (kind, true, _) in self.properties.items()
                if kind == "sometimes" and true}

    def fired(self, name: str | None = None) -> int:
        """How many failpoint faults fired (at ``name``, or anywhere) in this plan."""
        return self.active.fired(name)

    def check(self, verdict: Verdict) -> Verdict:
        """Fail this plan unless ``verdict`` passed."""
        return verdict.assert_ok()

    @property
    def sla(self) -> SLARecorder:
        """This plan's SLA recorder (on the plan's clock; samples go to its history)."""
        if self._sla is None:
            from pytest_resilience.sla import SLARecorder

            self._sla = SLARecorder(clock=self.clock, emit_samples=True)
        return self._sla

    def measure(self, operation: str) -> Measurement:
        """``with chaos.measure("search"):`` times one call of ``operation``."""
        return self.sla.measure(operation)

    def _property(self, name: str, kind: str) -> list[Any]:
        entry = self.properties.get(name)
        if entry is None:
            entry = self.properties[name] = [kind, 0, 0]
        elif entry[0] != kind:
            raise ValueError(f"property {name!r} is used as both always and sometimes. "
                             "Give each its own name.")
        return entry


@final
@dataclass
class ChaosResult:
    """What a chaos run did: plans run, faults fired per source and per family, the
    properties (name -> ``{"kind", "true", "false", "plans"}``), the coverage matrix
    merged over the plans, failing plans and the number of the first one (0: none)."""

    plans: int = 0
    fired: Counter[str] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=empty)
    failures: int = 0
    found_at: int = 0

    @property
    def reached(self) -> Counter[str]:
        """Per ``sometimes`` name, the plans in which it held."""
        return Counter({n: p["plans"] for n, p in self.properties.items()
                        if p["kind"] == "sometimes"})

    def add(self, run: ChaosRun, *, coverage: bool = True) -> None:
        """Count one plan's run."""
        self.plans += 1
        for event in run.history.snapshot():
            if event.kind == FAULT_FIRED:
                self.fired[event.source.removeprefix("failpoint:")] += 1
                self.families[str(event.attrs.get("family", "?"))] += 1
            elif event.kind == FAULT_ARMED and event.source != "faults":
                self.fired[event.source] += 1
        for name, (kind, true, false) in run.properties.items():
            entry = self.properties.setdefault(
                name, {"kind": kind, "true": 0, "false": 0, "plans": 0})
            entry["true"] += true
            entry["false"] += false
            entry["plans"] += 1 if true else 0
        if coverage:
            self.coverage = merge(self.coverage, coverage_matrix(run.history))


class ChaosFailure(AssertionError):
    """A plan broke the body, a checker, a property or the searched budget: holds the
    minimal ``plan``, its ``history``, the ``error``, the ``replay`` instructions, the
    ``result`` so far (plans run, shrinking included) and ``found_at``, the number of the
    first plan that failed."""

    def __init__(self, message: str, *, plan: FaultPlan, history: History,
                 error: BaseException, plans_run: int, found_at: int,
                 replay_command: str, result: ChaosResult | None = None,
                 summary: str = "") -> None:
        super().__init__(message)
        self.plan = plan
        self.history = history
        self.error = error
        self.plans_run = plans_run
        self.found_at = found_at
        self.replay_command = replay_command
        self.result = result if result is not None else ChaosResult(plans=plans_run)
        self.summary = summary


class ChaosVacuous(AssertionError):
    """Every plan passed, but a fault that must fire, a path that must be reached or a
    cell that must be covered never was: the run proved nothing about it."""

    def __init__(self, message: str, *, result: ChaosResult | None = None) -> None:
        super().__init__(message)
        self.result = result if result is not None else ChaosResult()


def _families(families: Iterable[Family | str]) -> list[Family]:
    return resolve_families(families)


def _execute(
    body: Body,
    plan: FaultPlan,
    rngs: tuple[random.Random, random.Random],
    families: Sequence[Family],
    *,
    checks: Sequence[Check],
    allow: tuple[type[BaseException], ...],
    maximize: Sequence[Budget] = (),
) -> tuple[ChaosRun, Exception | None, list[tuple[Budget, float | None]]]:
    """Run ``body`` once under ``plan``; the run, what failed (the body, a property, a
    checker or a searched budget) and each searched budget's observed figure.

    Families' per-run set-up (``PerRun.around``) and every applied fault are undone when
    the run ends, before the next plan."""
    clock = VirtualClock()
    history = History(clock=clock)
    decisions, draws = rngs
    error: Exception | None = None
    with recording(history), ExitStack() as stack:
        for family in families:
            if isinstance(family, PerRun):
                stack.enter_context(family.around(clock=clock, history=history))
        schedule = FaultSchedule(plan.scheduled, {f.name: f for f in families},
                                 clock=clock, history=history)
        stack.enter_context(schedule)  # faults scheduled at t=0 apply before the body
        active = faults.activate(plan.failpoint_plan(), clock=clock, history=history,
                                 rng=decisions)
        if plan.faults:  # an empty plan arms nothing, so it writes no fault.armed
            stack.enter_context(active)
        run = ChaosRun(plan, clock, history, active, draws)
        try:
            outcome = body(run)
            if inspect.isawaitable(outcome):
                asyncio.run(_await(outcome))
            elif isinstance(outcome, Verdict):
                outcome.assert_ok()
        except allow:
            pass
        except Exception as exc:
            error = exc
        error = error or _violated(run)
        _record_properties(run)
        if error is None:
            error = _judge(history, checks)
    observed = _observed(run, maximize)
    if error is None:
        error = _broken(observed)
    return run, error, observed


def _violated(run: ChaosRun) -> Exception | None:
    """An ``always`` that was false even though the body swallowed its exception."""
    names = [n for n, (kind, _, false) in run.properties.items() if kind == "always" and false]
    return PropertyFailed(f"always {names[0]!r} was false") if names else None


def _record_properties(run: ChaosRun) -> None:
    """Each property the plan evaluated, as a ``check.verdict`` in its history (a
    ``sometimes`` only where it held: elsewhere it was not judged)."""
    for name, (kind, true, false) in run.properties.items():
        if kind == "always":
            emit(CHECK_VERDICT, f"always: {name}", history=run.history,
                 checker=f"always: {name}", passed=not false,
                 explanation=f"{name!r} held {true} time(s), was false {false} time(s)")
        elif true:
            emit(CHECK_VERDICT, f"sometimes: {name}", history=run.history,
                 checker=f"sometimes: {name}", passed=True,
                 explanation=f"{name!r} held {true} time(s) in this plan")


def _judge(history: History, checks: Sequence[Check]) -> Exception | None:
    """Run each checker on the plan's history; its verdict is written there too."""
    for check in checks:
        before = len(history)
        verdict = check(history)
        if not any(e.kind == CHECK_VERDICT for e in history[before:]):
            emit(CHECK_VERDICT, verdict.checker, history=history, checker=verdict.checker,
                 passed=bool(verdict.ok), explanation=verdict.explanation)
        if not verdict.ok:
            return CheckFailed(verdict)
    return None


def _observed(run: ChaosRun, budgets: Sequence[Budget]) -> list[tuple[Budget, float | None]]:
    """Each searched budget's figure over this plan's samples, written as ``sla.budget``."""
    if not budgets:
        return []
    from pytest_resilience.sla._exact import exact_figure

    timed = run.history.select(SLA_SAMPLE)
    out = []
    for budget in budgets:
        samples = [(float(e.attrs["seconds"]), bool(e.attrs["ok"]), e.time) for e in timed
                   if budget.operation is None or e.source == budget.operation]
        figure = exact_figure(budget, samples)
        passed = None if figure is None else _holds(budget, figure)
        reason = ("no samples in this plan" if figure is None else
                  f"{budget.metric}={budget.format(figure)} "
                  f"{'within' if passed else 'breaks'} {budget.text} ({len(samples)} "
                  "samples in this plan, exact)")
        emit(SLA_BUDGET, "chaos", run.clock, history=run.history, budget=budget.text,
             metric=budget.metric, operation=budget.operation, threshold=budget.threshold,
             observed=figure, passed=passed, reason=reason)
        out.append((budget, figure))
    return out


def _holds(budget: Budget, figure: float) -> bool:
    """Whether an exact figure meets ``budget`` (no minimum sample count)."""
    return budget.check(figure, samples=10**9).passed is True


def _broken(observed: Sequence[tuple[Budget, float | None]]) -> Exception | None:
    for budget, figure in observed:
        if figure is not None and not _holds(budget, figure):
            return BudgetBroken(f"{_phrase(budget)} ({budget.metric}="
                                f"{budget.format(figure)} in this plan)",
                                budget=budget, observed=figure)
    return None


def _phrase(budget: Budget) -> str:
    """``search p95 over 200ms``: what breaking ``budget`` means."""
    what = f"{budget.operation} {budget.metric}" if budget.operation else budget.metric
    direction = "over" if budget.op in ("<", "<=") else "under"
    return f"takes {what} {direction} {budget.format(budget.threshold)}"


def _score(budget: Budget, figure: float) -> float:
    """How close ``figure`` is to breaking ``budget`` (1.0: at the threshold)."""
    if budget.op in ("<", "<="):
        return figure / budget.threshold if budget.threshold else figure
    return budget.threshold / figure if figure else math.inf


async def _await(awaitable: Any) -> None:
    result = await awaitable
    if isinstance(result, Verdict):
        result.assert_ok()


def _what(error: BaseException) -> str:
    if isinstance(error, CheckFailed):
        verdict = error.verdict
        return f"checker {verdict.checker!r} found a violation:\n  {verdict.explanation}"
    if isinstance(error, BudgetBroken):
        return f"this is the cheapest set of faults that {error}"
    if isinstance(error, PropertyFailed):
        return f"the property {error}"
    return f"the body raised {type(error).__name__}: {error}"


def _message(plan: FaultPlan, history: History, error: BaseException, *, plans_run: int,
             found_at: int, command: str) -> str:
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
        + f", {_what(error)}\n"
        f"minimal fault plan ({len(plan)} fault(s)):\n{plan.to_json(indent=2)}\n"
        f"last {len(tail)} of {len(history)} events:\n{events}\n"
        f"replay: {command}"
    )


def _default_command(plan: FaultPlan) -> str:
    return ("pytest_resilience.chaos.replay(body, faults.FaultPlan.from_json("
            f"{plan.to_json()!r}))")


def _settings(max_examples: int, database: ExampleDatabase | None = None) -> Any:
    from hypothesis import HealthCheck, Phase, settings

    return settings(max_examples=max_examples, deadline=None, database=database,
                    report_multiple_bugs=False, print_blob=False,
                    # no explain phase: the minimal plan is printed whole, and explaining
                    # it would run the body again and again
                    phases=[p for p in Phase if p is not Phase.explain],
                    suppress_health_check=[getattr(HealthCheck, name)
                                           for name in SUPPRESSED_HEALTH_CHECKS])


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
    maximize: Sequence[str | Budget] = (),
    require_coverage: Sequence[Sequence[str]] = (),
    around_plan: AroundPlan | None = None,
    replay_command: Callable[[FaultPlan], str] | None = None,
    database: ExampleDatabase | None = None,
    database_key: str = "",
    on_plan: Callable[[int, int], object] | None = None,
) -> ChaosResult:
    """Run ``body(run)`` once per fault plan generated from ``families``.

    A plan fails when the body raises (exceptions in ``allow`` are expected outcomes),
    returns a failing ``Verdict``, an ``always`` property is false, a checker in
    ``checks`` (called with the plan's history) fails, or the plan breaks a budget in
    ``maximize``. ``maximize`` turns the run into an adversarial search: each plan's
    figure for the budget (over what it timed with ``run.measure``) steers generation
    toward breaking it (Hypothesis ``target()``). The first failure is shrunk to the
    smallest plan and raised as ``ChaosFailure``, whose message holds the plan as JSON
    and ``replay_command(plan)``. When every plan passes, each name in ``must_fire`` (a
    failpoint or a fault source such as ``"clock"``) must have fired, each ``sometimes``
    name (given here or used by the body) must have held in some plan, and each cell of
    ``require_coverage`` (``(operation, family[, property])``) must have been exercised,
    else ``ChaosVacuous`` is raised. ``around_plan()`` is entered around each plan (the
    plugin re-creates fixtures there). With ``database`` (a Hypothesis example
    database) failing plans are saved under ``database_key`` and replayed first by later
    runs that share it. ``on_plan(plans_run, failures)`` is called after each plan
    (shrinking included), e.g. to show progress.
    """
    from hypothesis import errors, given, target
    from hypothesis import strategies as st

    from faults.strategies import fault_plans
    from pytest_resilience.sla import Budget

    chosen = _families(families)
    strategy = fault_plans(chosen, max_faults=max_faults, horizon=horizon, calls=calls)
    budgets = [b if isinstance(b, Budget) else Budget.parse(b) for b in maximize]
    allowed = tuple(allow)
    result = ChaosResult()
    failed: list[tuple[FaultPlan, History, BaseException]] = []
    enter = around_plan or nullcontext

    @_settings(max_examples, database)  # type: ignore[untyped-decorator]
    @given(st.data())
    def explore(data: Any) -> None:
        plan = data.draw(strategy, label="fault plan")
        rngs = (DrawnRandom(data), drawn_body_random(data, plan.seed))
        with enter():
            run, error, observed = _execute(body, plan, rngs, chosen, checks=checks,
                                            allow=allowed, maximize=budgets)
        for budget, figure in observed:
            if figure is not None:
                target(_score(budget, figure), label=budget.text)
        result.add(run)
        if error is not None:
            result.failures += 1
            result.found_at = result.found_at or result.plans
            decisions, draws = rngs
            assert isinstance(draws, BodyRandom)
            assert isinstance(decisions, DrawnRandom)
            failed.append((plan.with_draws(decisions.decisions, draws.draws), run.history,
                           error))
            if on_plan is not None:
                on_plan(result.plans, result.failures)
            raise error
        if on_plan is not None:
            on_plan(result.plans, result.failures)

    explore = _seeded(explore, seed, database, database_key)
    try:
        explore()
    except errors.Flaky as exc:
        if not failed:
            raise
        raise _flaky(failed[0], result, replay_command) from exc
    except Exception as exc:
        if not failed:
            raise
        raise _failure(failed[-1], result, replay_command) from exc
    _check_vacuity(result, must_fire, sometimes, require_coverage)
    return result


def _seeded(explore: Any, seed: int | None, database: ExampleDatabase | None,
            database_key: str) -> Any:
    """``explore`` keyed (one corpus entry per test, not one for every chaos test) and
    seeded, with its example database kept (``@seed`` turns it off; here it is the point)."""
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings

    explore.hypothesis.inner_test._hypothesis_internal_add_digest = database_key.encode()
    if seed is None:
        return explore
    explore = hypothesis_seed(seed)(explore)
    if database is not None:
        explore._hypothesis_internal_use_settings = settings(
            explore._hypothesis_internal_use_settings, database=database)
    return explore


def _failure(found: tuple[FaultPlan, History, BaseException], result: ChaosResult,
             replay_command: Callable[[FaultPlan], str] | None, *, plans_run: int | None = None,
             found_at: int | None = None) -> ChaosFailure:
    plan, history, error = found
    command = (replay_command or _default_command)(plan)
    plans_run = result.plans if plans_run is None else plans_run
    found_at = result.found_at if found_at is None else found_at
    message = _message(plan, history, error, plans_run=plans_run, found_at=found_at,
                       command=command)
    return ChaosFailure(message, plan=plan, history=history, error=error,
                        plans_run=plans_run, found_at=found_at, replay_command=command,
                        result=result, summary=_what(error).split("\n", 1)[0])


def _flaky(found: tuple[FaultPlan, History, BaseException], result: ChaosResult,
           replay_command: Callable[[FaultPlan], str] | None) -> ChaosFailure:
    plan, history, error = found
    command = (replay_command or _default_command)(plan)
    message = (
        f"chaos: plan {result.found_at} failed ({_what(error).splitlines()[0]}), but "
        "passed when it ran again: the plans are not independent. State left by one plan "
        "(a cache, a store, a proxy, a module global) changed what a later one did, so no "
        "minimal plan can be trusted. Make what the body changes fresh per plan: "
        "@pytest.mark.chaos(fresh=[...]) re-creates the named fixtures for each plan "
        "(chroma_store and fault_proxy reset themselves), or build that state inside the "
        f"body.\nfirst failing plan ({len(plan)} fault(s)):\n{plan.to_json(indent=2)}\n"
        f"replay: {command}"
    )
    return ChaosFailure(message, plan=plan, history=history, error=error,
                        plans_run=result.plans, found_at=result.found_at,
                        replay_command=command, result=result,
                        summary="plans are not independent (flaky)")


def _check_vacuity(result: ChaosResult, must_fire: Sequence[str], sometimes: Sequence[str],
                   require_coverage: Sequence[Sequence[str]]) -> None:
    from pytest_resilience._coverage import missing

    never = [n for n in must_fire if not result.fired[n]]
    declared = dict.fromkeys([*sometimes, *(n for n, p in result.properties.items()
                                            if p["kind"] == "sometimes")])
    unreached = [n for n in declared if not result.reached[n]]
    uncovered = missing(result.coverage, require_coverage)
    if never or unreached or uncovered:
        parts = []
        if never:
            parts.append(f"fault(s) {never} never fired")
        if unreached:
            parts.append(f"path(s) {unreached} were never reached")
        if uncovered:
            parts.append(f"required coverage {uncovered} was never exercised")
        raise ChaosVacuous(
            f"chaos: {result.plans} plan(s) passed, but {' and '.join(parts)}, so the run "
            "proved nothing about them. Check the failpoint names, raise max_faults or "
            "calls, or add plans that reach the path.", result=result)


def _replay_rngs(plan: FaultPlan) -> tuple[random.Random, random.Random]:
    decisions = ReplayRandom(plan.decisions)
    if plan.draws is None:  # a version-1 plan: chaos.rng drew from the decisions
        return decisions, decisions
    return decisions, ReplayBodyRandom(plan.draws, plan.seed)


def replay(
    body: Body,
    plan: FaultPlan,
    *,
    families: Iterable[Family | str] = ("clock",),
    checks: Sequence[Check] = (),
    allow: Sequence[type[BaseException]] = (),
    maximize: Sequence[str | Budget] = (),
    around_plan: AroundPlan | None = None,
    replay_command: Callable[[FaultPlan], str] | None = None,
) -> ChaosRun:
    """Run ``body`` once under ``plan``, repeating its recorded decisions exactly; never
    imports Hypothesis. Families the plan's scheduled entries name that ``families``
    lacks are built from the registry.

    Returns the run when it passes; raises ``ChaosFailure`` (with the run's history) when
    it fails, as the original failure did.
    """
    budgets = _budgets(maximize)
    chosen = _families(families)
    known = {f.name for f in chosen}
    chosen += [family_named(name) for name in plan.families() if name not in known]
    with (around_plan or nullcontext)():
        run, error, _ = _execute(body, plan, _replay_rngs(plan), chosen, checks=checks,
                                 allow=tuple(allow), maximize=budgets)
    if error is None:
        return run
    result = ChaosResult(failures=1, found_at=1)
    result.add(run)
    raise _failure((plan, run.history, error), result, replay_command, plans_run=1,
                   found_at=1) from error


def _budgets(maximize: Sequence[str | Budget]) -> list[Budget]:
    if not maximize:
        return []
    from pytest_resilience.sla import Budget

    return [b if isinstance(b, Budget) else Budget.parse(b) for b in maximize]

