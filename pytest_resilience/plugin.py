"""The pytest plugin (entry point ``resilience``): options, markers, core fixtures, summary.

Loading it imports no heavy dependency. Each fault family's fixtures live in its own
module under ``pytest_resilience._plugin``, registered with this one (``FAMILIES``).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from collections import Counter
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.calls import watch_calls
from pytest_resilience._plugin.state import (
    SESSION,
    ResilienceSession,
    allowed_modules,
    apply_marker_rules,
    derive_seed,
    generate_for_markers,
    get_state,
    item_record,
    on_marker,
    requests,
    test_clock,
)

if TYPE_CHECKING:
    import types

    from faults import FaultScope
    from pytest_resilience import History, VirtualClock

#: The family modules, registered by ``pytest_addoption`` rather than ``pytest_plugins``:
#: pytest looks each ``pytest_plugins`` name up among every installed distribution's
#: entry points before importing it, a few milliseconds each, on every run.
FAMILIES = (
    "pytest_resilience._plugin.report",
    "pytest_resilience._plugin.sla",
    "pytest_resilience._plugin.network",
    "pytest_resilience._plugin.memory",
    "pytest_resilience._plugin.chroma",
    "pytest_resilience._plugin.chaos",
    "pytest_resilience._plugin.migrations",
    "pytest_resilience._plugin.process",
    "pytest_resilience._plugin.redis",
    "pytest_resilience._plugin.hang",
)

SEED_OPTION = "--resilience-seed"
ALLOW_MODULE_OPTION = "--resilience-allow-module"
REPORT_OPTION = "--resilience-report"
_SEED_CACHE_KEY = "resilience/seed"
_FAULTS_MARKER_KWARGS = ("seed",)

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


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
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
        help="write report.json, report.md and report.html into DIR.",
    )
    group.addoption(
        ALLOW_MODULE_OPTION,
        action="append",
        default=[],
        dest="resilience_allow_module",
        metavar="MODULE",
        help="a module (and its submodules) that fault plans loaded from files may name "
        "although it is not imported yet; repeat for more.",
    )
    parser.addini("resilience_seed", "default for --resilience-seed", default="random")
    parser.addini("resilience_allow_modules",
                  "modules fault plan files may name although they are not imported",
                  type="linelist", default=[])
    parser.addini("resilience_report", "default for --resilience-report", default="")
    # The families next (their options join this group): ``-p no:<module>`` blocks one.
    for name in FAMILIES:
        if not pluginmanager.is_blocked(name) and not pluginmanager.has_plugin(name):
            pluginmanager.register(importlib.import_module(name), name)


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
    session = config.stash[SESSION] = ResilienceSession(
        seed=seed,
        seed_source=source,
        report_dir=Path(report) if report else None,
    )
    cache = getattr(config, "cache", None)
    if cache is not None and not hasattr(config, "workerinput"):
        cache.set(_SEED_CACHE_KEY, seed)
    from pytest_resilience._plugin.per_test import collect_records, watch_arming

    # Per-test hooks come with the first use of the harness (see _plugin/per_test.py);
    # report.json lists every test, and an xdist controller gets records from workers.
    if not hasattr(config, "workerinput") and (session.report_dir is not None
                                               or _distributed(config)):
        collect_records(config)
    session.arm_hook_before = watch_arming(config)
    from pytest_resilience._plugin.report import load_baseline

    load_baseline(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(), "resilience-xdist")


def _distributed(config: pytest.Config) -> bool:
    """Whether this session hands its tests to pytest-xdist workers."""
    option = config.option
    return bool(getattr(option, "numprocesses", None)) or getattr(option, "dist", "no") != "no"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give the arming hook back to the session this one ran inside, if any."""
    session = config.stash.get(SESSION, None)
    if session is not None:
        from pytest_resilience import arming

        arming.set_hook(session.arm_hook_before)


class _XdistHooks:
    """Registered only with pytest-xdist: every worker gets the controller's seed, and a
    worker that crashed is named (its tests' records are missing)."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["resilience_seed"] = get_state(node.config).seed

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        if error:
            get_state(node.config).lost_workers.append(str(node.gateway.id))


def pytest_report_header(config: pytest.Config) -> str:
    state = get_state(config)
    return f"resilience: seed={state.seed} (replay: {SEED_OPTION}={state.seed})"


#: A ``faults`` marker requests the ``faults`` fixture by itself.
on_marker("faults", requests("faults"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every family's marker rules (a marker requests its fixtures), in one pass."""
    apply_marker_rules(items)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every family's parametrisation by marker (chaos shards, migrations)."""
    generate_for_markers(metafunc)


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def resilience_seed(request: pytest.FixtureRequest) -> int:
    """This test's seed: derived from the session seed and the test's node id."""
    seed = derive_seed(get_state(request.config).seed, request.node.nodeid)
    item_record(request.node)["seed"] = seed
    return seed


@pytest.fixture
def clock() -> VirtualClock:
    """A fresh ``VirtualClock``: sleeps on it advance virtual time instantly."""
    from pytest_resilience import VirtualClock

    return VirtualClock()


@pytest.fixture
def history(request: pytest.FixtureRequest) -> Iterator[History]:
    """The test's event history, active for the test and stamped by the test's clock
    (the ``clock`` fixture when the test uses it, else the system clock). Components,
    faults and checkers write to it; the test's report record is built from it."""
    from pytest_resilience import History, recording
    from pytest_resilience._plugin.records import history_part

    events = History(clock=test_clock(request))
    watch_calls(request.node, events)
    with recording(events):
        yield events
    item_record(request.node).update(history_part(events))


@pytest.fixture
def faults(
    request: pytest.FixtureRequest, clock: VirtualClock, history: History, resilience_seed: int
) -> Generator[FaultScope, None, None]:
    """A ``FaultScope`` on the test's clock, history and seed that also reads like the
    ``faults`` module it shadows (``faults.failpoint``, ``faults.Fault``, ...); whatever
    it armed is undone at teardown, even on failure."""
    scope = _import_faults().FaultScope(clock=clock, seed=resilience_seed, history=history)
    try:
        marker = request.node.get_closest_marker("faults")
        if marker is not None:
            _apply_faults_marker(scope, marker, allowed_modules(request.config))
        yield scope
    finally:
        scope.close()


def _apply_faults_marker(scope: FaultScope, marker: pytest.Mark,
                         allow_modules: list[str]) -> None:
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
            plan = FaultPlan.from_json(_plan_file(arg), allow_modules=allow_modules)
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


def _plan_file(arg: str | Path) -> str:
    """The text of a fault plan file named in ``@pytest.mark.faults``."""
    try:
        return Path(arg).read_text(encoding="utf-8")
    except OSError as exc:
        pytest.fail(
            f"@pytest.mark.faults({str(arg)!r}): a string must be the path of a fault plan "
            f"JSON file, and {str(arg)!r} cannot be read ({exc.strerror or exc}). To arm a "
            f"failpoint, pass a Fault: @pytest.mark.faults(Fault({str(arg)!r}, "
            "Action.raise_())).",
            pytrace=False,
        )


#: Rows of the coverage matrix the terminal summary shows (report.json has them all).
_COVERAGE_ROWS = 20


def _write_coverage(tr: pytest.TerminalReporter, matrix: dict[str, Any]) -> None:
    """The run's coverage matrix (operation x family: each property's status)."""
    from pytest_resilience._coverage import render

    lines = render(matrix, observed_only=True)
    if not lines:
        return
    tr.write_line("coverage (operation x fault family observed: property status):")
    for line in lines[:_COVERAGE_ROWS]:
        tr.write_line(f"  {line}", red="FAIL" in line)
    if len(lines) > _COVERAGE_ROWS:
        tr.write_line(f"  ... {len(lines) - _COVERAGE_ROWS} more rows in report.json")


#: Event kinds the terminal summary counts, with their label.
_SUMMARY_KINDS = {"migration.crash_point": "migration crash points"}


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """A ``resilience`` section rendered from the per-test records; silent unless a test
    used the harness."""
    session = get_state(config)
    harness = [r for r in session.records.values() if "events" in r]
    if not harness and not session.lost_workers:
        return
    from pytest_resilience.report._json import summarise

    summary = summarise(list(session.records.values()))
    tr = terminalreporter
    tr.write_sep("-", "resilience")
    tr.write_line(
        f"seed: {session.seed} ({session.seed_source}; replay: {SEED_OPTION}={session.seed})"
    )
    fired = summary["faults_fired"]
    by_family = ", ".join(f"{f} {n}" for f, n in fired.items()) or "none"
    tr.write_line(
        f"tests using the harness: {len(harness)}, faults fired: {sum(fired.values())} "
        f"({by_family}), events recorded: {sum(int(r['events']) for r in harness)}"
    )
    budgets = summary["budgets"]
    if budgets["total"]:
        tr.write_line(f"SLA budgets met: {budgets['passed']}/{budgets['total']}"
                      + _as_expected(budgets))
    verdicts = summary["verdicts"]
    if verdicts["total"]:
        tr.write_line(f"checker verdicts passed: {verdicts['passed']}/{verdicts['total']}"
                      + _as_expected(verdicts))
    kinds: Counter[str] = Counter()
    for record in harness:
        kinds.update(record.get("kinds", {}))
    for kind, label in _SUMMARY_KINDS.items():
        if kinds[kind]:
            tr.write_line(f"{label}: {kinds[kind]}")
    chaos = summary["chaos"]
    if chaos["tests"]:
        tr.write_line(f"chaos: {chaos['plans']} plans in {chaos['tests']} test(s), "
                      f"{chaos['failures']} failing")
    _write_coverage(tr, summary["coverage"])
    for worker in session.lost_workers:
        tr.write_line(f"worker {worker} crashed: its tests' records are missing", red=True)


def _as_expected(counts: dict[str, int]) -> str:
    """The note on counts that xfail tests broke on purpose."""
    expected = counts.get("expected", 0)
    return f" ({expected} broken as an xfail test expects)" if expected else ""
