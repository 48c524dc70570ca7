"""Fixtures and hooks of the SLA family: the ``sla`` fixture and ``@pytest.mark.sla``.

Budgets are checked right after the test body (in ``pytest_runtest_call``), so a broken
budget fails the test itself with observed vs budget. Each budget's verdict goes into
``user_properties`` as ``sla:<budget>`` (JUnit XML ``<property>``, kept under xdist).
Per-operation histograms and per-test summaries are kept per session; xdist workers
send theirs to the controller as plain builtins through ``workeroutput``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.state import get_state, request_marked_fixture
from pytest_resilience.kinds import FAULT_FIRED, SLA_SAMPLE

if TYPE_CHECKING:
    from pytest_resilience._events import History
    from pytest_resilience.sla._recorder import OperationStats, SLARecorder

_WORKER_KEY = "resilience_sla"
_MARKER_KWARGS = ("name", "clock", "recovery")
_CLOCKS = ("real", "virtual")
_TIMELINE_LIMIT = 500
_RECORDER = pytest.StashKey["SLARecorder"]()
_RECOVERY = pytest.StashKey[tuple["History", float]]()
_BUDGET_CHECK = "resilience-sla-budget-check"
SESSION = pytest.StashKey["SLASession"]()


class SLASession:
    """Session-wide SLA data: histograms per (operation, variant), per-test summaries."""

    def __init__(self) -> None:
        self.operations: dict[tuple[str, str], OperationStats] = {}
        self.tests: dict[str, dict[str, Any]] = {}
        self.lost_workers: list[str] = []

    def add(self, operation: str, variant: str, stats: OperationStats) -> None:
        """Merge ``stats`` into the session's stats for ``operation`` under ``variant``."""
        current = self.operations.get((operation, variant))
        if current is None:
            from pytest_resilience.sla._recorder import OperationStats

            current = self.operations[(operation, variant)] = OperationStats()
        current.merge(stats)

    def to_wire(self) -> dict[str, Any]:
        """Plain builtins for ``workeroutput``: histograms and per-test summaries."""
        return {
            "v": 1,
            "operations": [
                {"operation": op, "variant": variant, "stats": stats.to_dict()}
                for (op, variant), stats in sorted(self.operations.items())
            ],
            "tests": self.tests,
        }

    def add_wire(self, wire: dict[str, Any]) -> None:
        """Merge what ``to_wire`` produced on a worker."""
        from pytest_resilience.sla._recorder import OperationStats

        for entry in wire["operations"]:
            stats = OperationStats.from_dict(entry["stats"])
            self.add(entry["operation"], entry["variant"], stats)
        self.tests.update(wire["tests"])

    # -- pytest hooks (registered per session) ----------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if _WORKER_KEY in output:
            self.add_wire(output[_WORKER_KEY])
        else:
            self.lost_workers.append(str(node.gateway.id))


def get_sla_session(config: pytest.Config) -> SLASession:
    """The session's SLA data (empty when no test used the ``sla`` fixture)."""
    session = config.stash.get(SESSION, None)
    if session is None:
        session = config.stash[SESSION] = SLASession()
    return session


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(get_sla_session(config), "resilience-sla-session")


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_WORKER_KEY] = get_sla_session(session.config).to_wire()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """An ``sla`` marker requests the ``sla`` fixture by itself."""
    request_marked_fixture(items, "sla")


@pytest.fixture
def sla(request: pytest.FixtureRequest) -> Generator[SLARecorder, None, None]:
    """Times operations and checks SLA budgets when the test body ends.

    ``with sla.measure("search"):`` (or ``async with``), ``sla.record(name, seconds,
    ok=...)``, ``sla.open_loop(name, rate=, count=)``; budgets come from
    ``@pytest.mark.sla("p95<200ms", ...)`` or ``sla.add_budgets(...)``. With
    ``clock="virtual"`` on the marker, times come from the test's ``clock`` fixture.
    """
    from pytest_resilience.sla._recorder import SLARecorder

    marker = request.node.get_closest_marker("sla")
    args: tuple[Any, ...] = marker.args if marker is not None else ()
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    unknown = sorted(set(kwargs) - set(_MARKER_KWARGS))
    if unknown:
        pytest.fail(
            f"@pytest.mark.sla got unknown keyword(s) {unknown}. Accepted: {list(_MARKER_KWARGS)}.",
            pytrace=False,
        )
    clock_kind = kwargs.get("clock", "real")
    if clock_kind not in _CLOCKS:
        pytest.fail(
            f"@pytest.mark.sla clock={clock_kind!r} is not a clock. Use 'real' or 'virtual'.",
            pytrace=False,
        )
    clock = request.getfixturevalue("clock") if clock_kind == "virtual" else None
    try:
        within = _recovery_budget(kwargs)
        recorder = SLARecorder(*args, clock=clock, name=kwargs.get("name"),
                               emit_samples=within is not None)
    except (TypeError, ValueError) as exc:
        pytest.fail(f"@pytest.mark.sla: {exc}", pytrace=False)
    request.node.stash[_RECORDER] = recorder
    if within is not None:  # judged on the test's history: its samples and fault windows
        request.node.stash[_RECOVERY] = (request.getfixturevalue("history"), within)
    if not request.config.pluginmanager.has_plugin(_BUDGET_CHECK):
        request.config.pluginmanager.register(_BudgetCheck(), _BUDGET_CHECK)
    yield recorder
    # Asked for inside the first such test's body, after its call phase began: the
    # budget check was registered too late for it, so check here (a teardown error).
    unchecked = _take(request.node)
    if unchecked is not None:
        _finish(request.node, unchecked, verify=True)


def _recovery_budget(kwargs: dict[str, Any]) -> float | None:
    """``recovery=``: seconds after the last fault is lifted to be back inside budget."""
    if kwargs.get("recovery") is None:
        return None
    from pytest_resilience._recovery import parse_duration

    return parse_duration(kwargs["recovery"])


def _take(item: pytest.Item) -> SLARecorder | None:
    """The test's recorder, removed from the item so it is summarised only once."""
    recorder = item.stash.get(_RECORDER, None)
    if recorder is not None:
        del item.stash[_RECORDER]
    return recorder


class _BudgetCheck:
    """The call-phase hook, registered by the first ``sla`` fixture of a session, so tests
    that never use it pay nothing."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        """After a passing body, check the budgets; a broken one fails the test."""
        __tracebackhide__ = True
        try:
            result = yield
        except BaseException:
            recorder = _take(item)
            if recorder is not None:
                _finish(item, recorder, verify=False)
            raise
        recorder = _take(item)
        if recorder is not None:
            _finish(item, recorder, verify=True)
        return result


def _finish(item: pytest.Item, recorder: SLARecorder, *, verify: bool) -> None:
    __tracebackhide__ = True
    from pytest_resilience.sla._recorder import ALL_OPERATIONS, summarise

    variant = _variant(item)
    session = get_sla_session(item.config)
    for operation, stats in recorder.operations.items():
        session.add(operation, variant, stats)
    summary = recorder.to_dict()
    summary["variant"] = variant
    summary["clock"] = type(recorder.clock).__name__
    if recorder.operations:
        summary["operations"][ALL_OPERATIONS] = summarise(recorder.operations).to_dict(
            histogram=False
        )
    timeline = _timeline(item)
    if timeline:
        summary["timeline"] = timeline
    session.tests[item.nodeid] = summary
    state = get_state(item.config)
    met = sum(v["passed"] is True for v in summary["budgets"])
    state.count("sla budgets met", met)
    state.count("sla budgets not met", len(summary["budgets"]) - met)
    for verdict in summary["budgets"]:
        label = {True: "pass", False: "FAIL", None: "unverified"}[verdict["passed"]]
        item.user_properties.append((f"sla:{verdict['budget']}", f"{label}: {verdict['reason']}"))
    recovery = item.stash.get(_RECOVERY, None)
    broken = None
    if recovery is not None:  # sla.budget events with metric="recovery"
        from pytest_resilience._recovery import judge_recovery

        broken = judge_recovery(recovery[0], recorder.budgets, recovery[1], source=item.nodeid)
    if verify:
        recorder.verify()
        if broken is not None:
            raise broken


def _variant(item: pytest.Item) -> str:
    """``faults`` when a fault fired in the test, else ``baseline``."""
    scope = getattr(item, "funcargs", {}).get("faults")
    fired = getattr(scope, "fired", None)
    if callable(fired) and fired():
        return "faults"
    history = getattr(item, "funcargs", {}).get("history")
    if history is not None and history.select(kind=FAULT_FIRED):
        return "faults"
    return "baseline"


def _timeline(item: pytest.Item) -> list[list[Any]]:
    """Fault and state-change events of the test's history: ``[time, kind, source]``."""
    history = getattr(item, "funcargs", {}).get("history")
    if history is None:
        return []
    rows: list[list[Any]] = []
    for event in history:
        if event.kind == SLA_SAMPLE:
            continue
        rows.append([float(event.time), str(event.kind), str(event.source)])
        if len(rows) >= _TIMELINE_LIMIT:
            break
    return rows
