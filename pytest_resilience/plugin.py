"""The pytest plugin (entry point ``resilience``): options, markers, core fixtures, summary.

Loading it imports no heavy dependency. Each fault family's fixtures live in its own
module under ``pytest_resilience._plugin`` and are registered through ``pytest_plugins``.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.state import (
    RECORD_KEY,
    STATE,
    SessionState,
    derive_seed,
    get_state,
    request_marked_fixture,
)

if TYPE_CHECKING:
    import types

    from faults import FaultScope
    from pytest_resilience._clock import VirtualClock
    from pytest_resilience._events import History

pytest_plugins = (
    "pytest_resilience._plugin.report",
    "pytest_resilience._plugin.sla",
    "pytest_resilience._plugin.network",
    "pytest_resilience._plugin.memory",
    "pytest_resilience._plugin.chroma",
    "pytest_resilience._plugin.chaos",
    "pytest_resilience._plugin.migrations",
)

SEED_OPTION = "--resilience-seed"
REPORT_OPTION = "--resilience-report"
_SEED_CACHE_KEY = "resilience/seed"
_FAULTS_MARKER_KWARGS = ("seed",)
_TEST_RECORD = pytest.StashKey[dict[str, Any]]()

MARKERS = {
    "sla": "sla(*budgets, name=None, clock='real'|'virtual', recovery=None): SLA budgets "
    "such as 'p95<200ms' or 'error_rate<1%', checked when the test ends (requests the `sla` "
    "fixture); recovery='5s': back inside them within 5 s after the last fault is lifted.",
    "faults": "faults(*faults_or_plans, seed=None): Fault objects, FaultPlans or paths to "
    "plan JSON files armed for the test (requests the `faults` fixture).",
    "chaos": "chaos(**settings): run the test body once per generated fault plan "
    "(property-based fault run); maximize='op: p95<200ms' searches for the cheapest plan "
    "breaking a budget, require_coverage=[(op, family)] fails a run that never exercised "
    "them, fresh=[fixture] re-creates fixtures per plan (docs/chaos.md).",
    "migrations": "migrations(path=None, *, seed=True, kill_sample=2, kill_seed=0, "
    "round_trip=True, table=, section=, options=): run the test once per migration of the "
    "directory or alembic.ini at path (relative to the test file; default: ini key "
    "resilience_migrations), with its MigrationCase as the `migration` argument.",
}


def _seed_arg(value: str) -> int | str:
    if value in ("random", "last"):
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a seed. Pass an integer, 'random' or 'last'."
        ) from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience", "pytest-resilience: faults, clocks and SLA budgets")
    group.addoption(
        SEED_OPTION,
        action="store",
        type=_seed_arg,
        default=None,
        dest="resilience_seed",
        metavar="N|random|last",
        help="seed for every random fault decision; 'last' replays the previous run "
        "(default: random, printed in the header; pytest-randomly's seed when it is active).",
    )
    group.addoption(
        REPORT_OPTION,
        action="store",
        default=None,
        dest="resilience_report",
        metavar="DIR",
        help="write report.json (and more, per the report modules) into DIR.",
    )
    parser.addini("resilience_seed", "default for --resilience-seed", default="random")
    parser.addini("resilience_report", "default for --resilience-report", default="")


_OUR_FAULTS = Path(__file__).resolve().parent.parent / "faults" / "__init__.py"


def _check_faults_name() -> None:
    """Refuse a user module that shadows our ``faults`` package, without importing it
    (a run that injects no fault never pays for loading it)."""
    module = sys.modules.get("faults")
    if module is not None:
        origin = getattr(module, "__file__", None)
    else:
        spec = importlib.util.find_spec("faults")
        origin = spec.origin if spec is not None else None
    if origin is None or Path(origin).resolve() != _OUR_FAULTS:
        raise pytest.UsageError(
            f"'faults' was imported from {origin or '?'}, which shadows "
            "pytest-resilience's faults package. Rename that module or run pytest with "
            "--import-mode=importlib."
        )


def _import_faults() -> types.ModuleType:
    """Import our ``faults`` package, refusing a user module that shadows it."""
    _check_faults_name()
    import faults

    return faults


def _resolve_seed(config: pytest.Config) -> tuple[int, str]:
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None and "resilience_seed" in workerinput:
        return int(workerinput["resilience_seed"]), "controller"
    option = config.getoption("resilience_seed")
    if option is None:
        option = _seed_arg(str(config.getini("resilience_seed")))
    if isinstance(option, int):
        return option, "option"
    if option == "last":
        cache = getattr(config, "cache", None)
        cached = cache.get(_SEED_CACHE_KEY, None) if cache is not None else None
        if cached is None:
            raise pytest.UsageError(
                "--resilience-seed=last: no previous seed is cached. Run once without it, "
                "or pass an integer seed."
            )
        return int(cached), "last run"
    randomly_seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and isinstance(randomly_seed, int):
        return randomly_seed, "pytest-randomly"
    return random.SystemRandom().randrange(2**32), "random"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{doc}" if doc.startswith(name) else name)
    _check_faults_name()
    seed, source = _resolve_seed(config)
    report = config.getoption("resilience_report") or config.getini("resilience_report")
    config.stash[STATE] = SessionState(
        seed=seed,
        seed_source=source,
        report_dir=Path(report) if report else None,
    )
    cache = getattr(config, "cache", None)
    if cache is not None and not hasattr(config, "workerinput"):
        cache.set(_SEED_CACHE_KEY, seed)
    config.pluginmanager.register(_RecordCollector(config.stash[STATE]), "resilience-records")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "resilience-xdist")


class _XdistHooks:
    """Registered only with pytest-xdist: every worker gets the controller's seed."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["resilience_seed"] = get_state(node.config).seed

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Merge a worker's counters; name the worker if it crashed."""
        state = get_state(node.config)
        output = getattr(node, "workeroutput", None) or {}
        state.counters.update(output.get("resilience_counters", {}))
        if error:
            state.lost_workers.append(str(node.gateway.id))


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["resilience_counters"] = dict(get_state(session.config).counters)


def pytest_report_header(config: pytest.Config) -> str:
    state = get_state(config)
    return f"resilience: seed={state.seed} (replay: {SEED_OPTION}={state.seed})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A ``faults`` marker requests the ``faults`` fixture by itself."""
    request_marked_fixture(items, "faults")


def _test_record(item: pytest.Item) -> dict[str, Any]:
    record = item.stash.get(_TEST_RECORD, None)
    if record is None:
        record = item.stash[_TEST_RECORD] = {}
    return record


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def resilience_seed(request: pytest.FixtureRequest) -> int:
    """This test's seed: derived from the session seed and the test's node id."""
    seed = derive_seed(get_state(request.config).seed, request.node.nodeid)
    _test_record(request.node)["seed"] = seed
    return seed


@pytest.fixture
def clock() -> VirtualClock:
    """A fresh ``VirtualClock``: sleeps on it advance virtual time instantly."""
    from pytest_resilience._clock import VirtualClock

    return VirtualClock()


@pytest.fixture
def history(request: pytest.FixtureRequest) -> Iterator[History]:
    """The test's event history, active for the test: components and faults write to it."""
    from pytest_resilience._events import recording

    with recording() as events:
        yield events
    _test_record(request.node)["events"] = len(events)


@pytest.fixture
def faults(
    request: pytest.FixtureRequest, clock: VirtualClock, history: History, resilience_seed: int
) -> Generator[FaultScope, None, None]:
    """A ``FaultScope`` on the test's clock and seed; undone at teardown, even on failure."""
    scope = _import_faults().FaultScope(clock=clock, seed=resilience_seed, history=history)
    try:
        marker = request.node.get_closest_marker("faults")
        if marker is not None:
            _apply_faults_marker(scope, marker)
        yield scope
    finally:
        scope.close()
        _test_record(request.node)["faults_fired"] = scope.fired()


def _apply_faults_marker(scope: FaultScope, marker: pytest.Mark) -> None:
    unknown = sorted(set(marker.kwargs) - set(_FAULTS_MARKER_KWARGS))
    if unknown:
        pytest.fail(
            f"@pytest.mark.faults got unknown keyword(s) {unknown}. Accepted: "
            f"{list(_FAULTS_MARKER_KWARGS)}.",
            pytrace=False,
        )
    from faults import Fault, FaultPlan

    seed = marker.kwargs.get("seed")
    for arg in marker.args:
        if isinstance(arg, str | Path):
            plan = FaultPlan.from_json(Path(arg).read_text(encoding="utf-8"))
        elif isinstance(arg, Fault | FaultPlan):
            plan = arg if isinstance(arg, FaultPlan) else FaultPlan([arg])
        elif isinstance(arg, list | tuple) and all(isinstance(f, Fault) for f in arg):
            plan = FaultPlan(list(arg))
        else:
            pytest.fail(
                f"@pytest.mark.faults got {arg!r}. Pass Fault objects, FaultPlans, lists "
                "of Faults or paths to plan JSON files.",
                pytrace=False,
            )
        scope.activate(plan, seed=seed)


# -- per-test bookkeeping ----------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Attach the test's record, and stop any fault that leaked out of the test."""
    try:
        yield
    finally:
        record = item.stash.get(_TEST_RECORD, None)
        if record:
            item.user_properties.append((RECORD_KEY, dict(record)))
        loaded = sys.modules.get("faults")  # not loaded yet: no failpoint can be armed
        leaked = loaded.disarm_all() if loaded is not None else []
    if leaked:
        raise pytest.fail.Exception(
            f"failpoints {leaked} were still armed after the test; they have been disarmed. "
            "Arm faults with `with faults.inject(...)`, the `faults` fixture, or call "
            ".stop() on the activation.",
            pytrace=False,
        )


class _RecordCollector:
    """Collects each test's outcome and record (on the xdist controller too).

    One per session, registered on that session's plugin manager, so nested pytester
    sessions never share state.
    """

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.state
        phase_counts = report.when == "call" or report.failed or report.skipped
        if phase_counts and state.outcomes.get(report.nodeid) != "failed":
            state.outcomes[report.nodeid] = report.outcome
        for key, value in report.user_properties:
            if key == RECORD_KEY and isinstance(value, dict):
                state.records[report.nodeid] = value


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """A ``resilience`` section, silent unless a test used the harness."""
    state = get_state(config)
    if not state.records and not state.counters:
        return
    tr = terminalreporter
    tr.write_sep("-", "resilience")
    tr.write_line(f"seed: {state.seed} ({state.seed_source}; replay: {SEED_OPTION}={state.seed})")
    fired = sum(int(r.get("faults_fired", 0)) for r in state.records.values())
    events = sum(int(r.get("events", 0)) for r in state.records.values())
    tr.write_line(
        f"tests using the harness: {len(state.records)}, faults fired: {fired}, "
        f"events recorded: {events}"
    )
    for name, value in sorted(state.counters.items()):
        tr.write_line(f"{name}: {value}")
    for worker in state.lost_workers:
        tr.write_line(f"worker {worker} crashed: its counters are missing", red=True)
