"""The ``chaos`` marker's runner and ``--resilience-replay``: property-based fault runs.

``@pytest.mark.chaos(failpoints=..., families=..., checks=..., must_fire=...)`` runs the
test body once per generated fault plan; the test asks for the ``chaos`` fixture, which
is that plan's ``ChaosRun``. A failure is shrunk to the smallest plan, written as JSON and
reported once, with the one command line that replays it. Every run writes one
``chaos.run`` event into the test's own history. Hypothesis is imported only when a chaos
test generates plans; a replay never imports it.
``--resilience-chaos-db`` shares failing plans between runs and runners; ``shards=N``
splits a chaos test into N items with their own seeds (for pytest-xdist).
"""

from __future__ import annotations

import inspect
import json
import math
import re
import tempfile
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.progress import chaos_progress
from pytest_resilience._plugin.state import (
    PLAN_RESETS,
    allowed_modules,
    derive_seed,
    get_state,
    on_marker,
    requests,
)

if TYPE_CHECKING:
    from hypothesis.database import ExampleDatabase

    from faults import FaultPlan
    from faults.families import Family
    from pytest_resilience import History
    from pytest_resilience.chaos import ChaosResult, ChaosRun

REPLAY_OPTION = "--resilience-replay"
CHAOS_DB_OPTION = "--resilience-chaos-db"
SHARD_FIXTURE = "resilience_chaos_shard"
_SETTINGS = ("failpoints", "families", "max_faults", "horizon", "calls", "max_examples",
             "checks", "allow", "must_fire", "sometimes", "max_delay", "fresh", "maximize",
             "require_coverage", "shards", "deadline")
_RUN_KEYS = ("max_faults", "horizon", "calls", "max_examples", "must_fire", "sometimes",
             "require_coverage")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience")
    group.addoption(
        REPLAY_OPTION,
        action="store",
        default=None,
        dest="resilience_replay",
        metavar="FILE",
        help="run the chaos test the plan in FILE belongs to (as printed by a failing chaos "
        "test) once, under that plan, instead of generating plans.",
    )
    group.addoption(
        CHAOS_DB_OPTION,
        action="store",
        default=None,
        dest="resilience_chaos_db",
        metavar="URL|DIR",
        help="keep failing chaos plans in this Hypothesis example database (redis://... "
        "shares them between CI runners; a directory keeps them locally); saved plans are "
        "replayed first.",
    )
    parser.addini("resilience_chaos_db", f"default for {CHAOS_DB_OPTION}", default="")


def _shard(metafunc: pytest.Metafunc, marker: pytest.Mark) -> None:
    """``@pytest.mark.chaos(shards=N)``: N items, each with its own seed and its share of
    ``max_examples``, so pytest-xdist spreads one chaos test over its workers."""
    shards = marker.kwargs.get("shards", 1)
    if shards == 1:
        return
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        pytest.fail(f"@pytest.mark.chaos(shards={shards!r}): pass an integer >= 1.",
                    pytrace=False)
    metafunc.fixturenames.append(SHARD_FIXTURE)
    metafunc.parametrize(SHARD_FIXTURE, [(i, shards) for i in range(shards)], indirect=True,
                         ids=[f"chaos-shard-{i + 1}of{shards}" for i in range(shards)])


# A ``chaos`` marker requests the ``chaos`` fixture (and the test's ``history``, where the
# run's result goes) by itself.
on_marker("chaos", requests("chaos", "history"), generate=_shard)


@pytest.fixture
def resilience_chaos_shard(request: pytest.FixtureRequest) -> tuple[int, int]:
    """``(index, count)`` of this item's shard of a sharded chaos test."""
    shard: tuple[int, int] = getattr(request, "param", (0, 1))
    return shard


def chaos_database(config: pytest.Config) -> ExampleDatabase | None:
    """The session's chaos corpus (``--resilience-chaos-db`` or its ini key), built once."""
    state = get_state(config)
    if not state.chaos_db_built:
        from pytest_resilience.chaos._corpus import example_database

        value = config.getoption("resilience_chaos_db") or config.getini("resilience_chaos_db")
        try:
            state.chaos_db = example_database(str(value))
        except ValueError as exc:
            raise pytest.UsageError(f"{CHAOS_DB_OPTION}={exc}") from None
        state.chaos_db_built = True
    database: ExampleDatabase | None = state.chaos_db
    return database


_RUNNER = "resilience-chaos-runner"


class ChaosSlot:
    """Stands in for the ``chaos`` fixture until the runner passes each plan's run."""

    def __repr__(self) -> str:
        return "<chaos: replaced by each plan's ChaosRun>"


@pytest.fixture
def chaos(request: pytest.FixtureRequest, history: History) -> ChaosSlot:
    """The current plan's ``ChaosRun`` inside a ``@pytest.mark.chaos`` test."""
    if request.node.get_closest_marker("chaos") is None:
        pytest.fail("The `chaos` fixture needs @pytest.mark.chaos(...) on the test.",
                    pytrace=False)
    if not request.config.pluginmanager.has_plugin(_RUNNER):
        request.config.pluginmanager.register(_ChaosCall(), _RUNNER)
    return ChaosSlot()


def _families(settings: Mapping[str, Any], funcargs: Mapping[str, Any]) -> list[Family | str]:
    """The marker's families; a function in ``families`` is called with the fixtures its
    parameters name (``lambda proxy: network_toxics(proxy)``), once per test."""
    from faults.families import Family, failpoints

    families: list[Family | str] = [
        f if isinstance(f, str | Family) or not callable(f) else _from_fixtures(f, funcargs)
        for f in settings.get("families", ())
    ]
    sites = settings.get("failpoints")
    if sites:
        families.insert(0, failpoints(sites, max_delay=float(settings.get("max_delay", 0.0))))
    return families


def _from_fixtures(factory: Callable[..., Family], funcargs: Mapping[str, Any]) -> Family:
    names = list(inspect.signature(factory).parameters)
    missing = [n for n in names if n not in funcargs]
    if missing:
        pytest.fail(f"@pytest.mark.chaos: the family factory {factory!r} takes fixture(s) "
                    f"{missing} that the test does not use. Add them to the test's "
                    "arguments.", pytrace=False)
    return factory(**{n: funcargs[n] for n in names})


def _settings(marker: pytest.Mark) -> dict[str, Any]:
    unknown = sorted(set(marker.kwargs) - set(_SETTINGS))
    if marker.args or unknown:
        pytest.fail(
            f"@pytest.mark.chaos got {list(marker.args) + unknown!r}. It takes keywords "
            f"only: {', '.join(_SETTINGS)}.",
            pytrace=False,
        )
    settings = dict(marker.kwargs)
    maximize = settings.get("maximize", ())
    settings["maximize"] = [maximize] if isinstance(maximize, str) else list(maximize)
    fresh = settings.get("fresh", ())
    settings["fresh"] = [fresh] if isinstance(fresh, str) else list(fresh)
    cells = settings.get("require_coverage", ())
    if not all(isinstance(c, tuple | list) and 2 <= len(c) <= 3
               and all(isinstance(p, str) for p in c) for c in cells):
        pytest.fail(f"@pytest.mark.chaos require_coverage={cells!r} is not a list of cells. "
                    "Pass tuples (operation, family) or (operation, family, property), e.g. "
                    "[('search', 'network'), ('search', 'network', 'search: p95<200ms')].",
                    pytrace=False)
    return settings


def _plan_path(item: pytest.Function) -> Path:
    state = get_state(item.config)
    cache = getattr(item.config, "cache", None)
    if state.report_dir is not None:
        folder = state.report_dir / "chaos"
    elif cache is not None:
        folder = Path(cache.mkdir("resilience-chaos"))
    else:
        folder = Path(tempfile.gettempdir()) / "pytest-resilience-chaos"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid).strip("_") + ".json")


def _replay_command(item: pytest.Function, plan: FaultPlan) -> str:
    path = _plan_path(item)
    path.write_text(json.dumps({"test": item.nodeid, **plan.to_dict()}, indent=2) + "\n",
                    encoding="utf-8")
    seed = get_state(item.config).seed
    return (f"pytest '{item.nodeid}' {REPLAY_OPTION}={path}\n"
            f"    (or regenerate the run: pytest '{item.nodeid}' --resilience-seed={seed})")


def _replay_plan(item: pytest.Function) -> FaultPlan | None:
    file = item.config.getoption("resilience_replay")
    if not file:
        return None
    from faults import FaultPlan

    try:
        data = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"{REPLAY_OPTION}={file}: cannot read the plan ({exc}). Pass "
                                "the file a failing chaos test printed.") from None
    owner = data.get("test")
    if owner not in (None, item.nodeid):
        pytest.fail(f"{REPLAY_OPTION}={file} holds the plan of {owner!r}, not of this test "
                    f"({item.nodeid!r}). Replay it on its own test: pytest '{owner}' "
                    f"{REPLAY_OPTION}={file}", pytrace=False)
    try:
        return FaultPlan.from_dict(data, allow_modules=allowed_modules(item.config))
    except (TypeError, ValueError) as exc:
        pytest.fail(f"{REPLAY_OPTION}={file}: {exc}", pytrace=False)


# -- fixtures made fresh for each plan ----------------------------------------------------
def _fresh_order(item: pytest.Function, fresh: Sequence[str]) -> list[str]:
    """The fixtures to re-create per plan: those named and every function-scoped fixture
    of the test depending on them, dependencies first."""
    defs = item._fixtureinfo.name2fixturedefs
    unknown = [n for n in fresh if n not in defs]
    if unknown:
        pytest.fail(f"@pytest.mark.chaos fresh={list(fresh)!r}: the test does not use "
                    f"fixture(s) {unknown}. Name fixtures the test (or its fixtures) use.",
                    pytrace=False)
    order: list[str] = []
    marks: dict[str, bool] = {}  # name -> whether it must be re-created

    def visit(name: str) -> bool:
        if name in marks:
            return marks[name]
        marks[name] = False  # a cycle cannot happen in pytest; this guards anyway
        fixturedef = defs[name][-1] if name in defs else None
        deps = [visit(d) for d in (fixturedef.argnames if fixturedef else ()) if d in defs]
        needed = name in fresh or (any(deps) and fixturedef is not None
                                   and fixturedef.scope == "function")
        if needed:
            if fixturedef is None or fixturedef.scope != "function":
                scope = fixturedef.scope if fixturedef else "?"
                pytest.fail(f"@pytest.mark.chaos fresh=[{name!r}]: {name!r} is "
                            f"{scope}-scoped; only function-scoped fixtures can be "
                            "re-created per plan.", pytrace=False)
            order.append(name)
        marks[name] = needed
        return needed

    for name in item.fixturenames:
        if name in defs:
            visit(name)
    return order


@contextmanager
def _fixture_value(item: pytest.Function, name: str,
                   values: Mapping[str, Any]) -> Iterator[Any]:
    """A new value of fixture ``name``, its teardown run at exit."""
    from _pytest.fixtures import resolve_fixture_function

    fixturedef = item._fixtureinfo.name2fixturedefs[name][-1]
    request = item._request
    fn = resolve_fixture_function(fixturedef, request)
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        pytest.fail(f"@pytest.mark.chaos fresh: {name!r} is an async fixture; only sync "
                    "fixtures can be re-created per plan.", pytrace=False)
    kwargs = {a: request if a == "request" else values.get(a, item.funcargs.get(a))
              for a in fixturedef.argnames}
    if not inspect.isgeneratorfunction(fn):
        yield fn(**kwargs)
        return
    generator: Generator[Any, None, None] = fn(**kwargs)
    value = next(generator)
    try:
        yield value
    finally:
        try:
            next(generator)
        except StopIteration:
            pass
        else:
            pytest.fail(f"fixture {name!r} yielded twice.", pytrace=False)


class _PerPlan:
    """Around each plan: the ``fresh`` fixtures re-created (their teardown after it), and
    the resets our own mutable fixtures registered run after it."""

    def __init__(self, item: pytest.Function, fresh: Sequence[str]) -> None:
        self.item = item
        self.order = _fresh_order(item, fresh) if fresh else []
        self.values: dict[str, Any] = {}
        self.plans = 0
        self.resets: list[Callable[[], None]] = []

    @contextmanager
    def __call__(self) -> Iterator[None]:
        self.plans += 1
        if self.plans == 1:
            self.resets = [start() for start in self.item.stash.get(PLAN_RESETS, ())]
        try:
            with ExitStack() as stack:
                if self.plans > 1:  # the first plan uses the test's own fixtures
                    for name in self.order:
                        self.values[name] = stack.enter_context(
                            _fixture_value(self.item, name, self.values))
                yield
        finally:
            for reset in self.resets:
                reset()


# -- the runner ---------------------------------------------------------------------------
class _ChaosCall:
    """Runs chaos-marked bodies; registered by the first ``chaos`` fixture of a session,
    so tests without the marker pay nothing."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run a ``chaos``-marked test body once per plan (or once, under a replayed plan)."""
        marker = pyfuncitem.get_closest_marker("chaos")
        if marker is None:
            return None
        failure = _run(pyfuncitem, _settings(marker))
        if failure is not None:  # raised here, outside any handler: printed once
            raise pytest.fail.Exception(failure, pytrace=False)
        return True


def _run(item: pytest.Function, settings: dict[str, Any]) -> str | None:
    """Run the chaos test; the failure message, or ``None`` when it passed."""
    from pytest_resilience.chaos import (
        ChaosFailure,
        ChaosResult,
        ChaosVacuous,
        replay,
        run_chaos,
    )

    families = _families(settings, item.funcargs)
    names = item._fixtureinfo.argnames
    per_plan = _PerPlan(item, settings["fresh"])

    def call_body(run: ChaosRun) -> Any:
        args = {n: run if n == "chaos" else per_plan.values.get(n, item.funcargs[n])
                for n in names}
        return item.obj(**args)

    from pytest_resilience._plugin.hang import chaos_deadline  # deadline=

    body = chaos_deadline(item, settings, call_body)

    common: dict[str, Any] = {
        "families": families,
        "checks": tuple(settings.get("checks", ())),
        "allow": tuple(settings.get("allow", ())),
        "maximize": settings["maximize"],
        "around_plan": per_plan,
        "replay_command": lambda plan: _replay_command(item, plan),
    }
    state = get_state(item.config)
    plan = _replay_plan(item)
    result: ChaosResult
    try:
        if plan is not None:
            run = replay(body, plan, **common)
            result = ChaosResult()
            result.add(run)
        else:
            run_settings = {k: settings[k] for k in _RUN_KEYS if k in settings}
            key = item.nodeid
            callspec = getattr(item, "callspec", None)
            if callspec is not None and SHARD_FIXTURE in callspec.params:
                index, count = callspec.params[SHARD_FIXTURE]
                run_settings["max_examples"] = math.ceil(
                    int(settings.get("max_examples", 100)) / count)
                key = key.replace(f"chaos-shard-{index + 1}of{count}", "chaos-shard")
            progress = chaos_progress(item, int(run_settings.get("max_examples", 100)))
            try:
                result = run_chaos(
                    body, seed=derive_seed(state.seed, item.nodeid),
                    database=chaos_database(item.config), database_key=key,
                    on_plan=progress, **common, **run_settings)
            finally:
                if progress is not None:
                    progress.close()
    except ChaosFailure as exc:
        _record(item, exc.result, settings["maximize"], failure=exc)
        return str(exc)
    except ChaosVacuous as exc:
        _record(item, exc.result, settings["maximize"], error=str(exc).split("\n", 1)[0])
        return str(exc)
    _record(item, result, settings["maximize"])
    return None


def _record(item: pytest.Function, result: ChaosResult, maximize: Sequence[Any], *,
            failure: Any = None, error: str | None = None) -> None:
    """One ``chaos.run`` event (and a verdict per property) in the test's own history."""
    from pytest_resilience import History, emit
    from pytest_resilience.chaos import BudgetBroken
    from pytest_resilience.kinds import CHAOS_RUN, CHECK_VERDICT

    history = item.funcargs.get("history")
    if not isinstance(history, History):
        return
    for name, prop in sorted(result.properties.items()):
        kind, true, false = prop["kind"], prop["true"], prop["false"]
        passed = not false if kind == "always" else bool(true)
        emit(CHECK_VERDICT, f"{kind}: {name}", history=history, checker=f"{kind}: {name}",
             passed=passed, explanation=f"{name!r} held {true} time(s) and was false "
             f"{false} time(s) over {result.plans} plan(s)")
    replay_line = None
    search: dict[str, Any] | None = None
    if maximize:
        search = {"budgets": [str(getattr(b, "text", b)) for b in maximize], "broken": None,
                  "observed": None}
    if failure is not None:
        replay_line = failure.replay_command.split("\n", 1)[0]
        error = failure.summary or str(failure.error)
        if search is not None and isinstance(failure.error, BudgetBroken):
            search.update(broken=failure.error.budget.text, observed=failure.error.observed)
    emit(CHAOS_RUN, item.nodeid, history=history, plans=result.plans,
         failures=result.failures, fired=dict(result.families),
         plan=failure.plan.to_dict() if failure is not None else None,
         replay=replay_line, error=error, properties=result.properties,
         coverage=result.coverage, search=search)
