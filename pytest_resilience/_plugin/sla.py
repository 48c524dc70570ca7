"""Fixtures and hooks of the SLA family: the ``sla`` fixture and ``@pytest.mark.sla``.

Budgets are checked right after the test body (the core plugin's call watch runs the
check), so a broken budget fails the test itself with observed vs budget. Each budget's
verdict is an ``sla.budget`` event in the test's history; the test's record carries its
per-operation stats (by variant: a sample taken while a fault was active is ``faults``)
with their histograms, which the controller merges per operation for the reports.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.calls import after_call
from pytest_resilience._plugin.state import item_record, on_marker

if TYPE_CHECKING:
    from pytest_resilience import History
    from pytest_resilience.sla._recorder import SLARecorder

_MARKER_KWARGS = ("name", "clock", "recovery")
_CLOCKS = ("real", "virtual")
_RECORDER = pytest.StashKey["SLARecorder"]()
_RECOVERY = pytest.StashKey[float]()


def _request_fixtures(item: pytest.Function, marker: pytest.Mark) -> None:
    """An ``sla`` marker requests the ``sla`` fixture by itself (and ``clock`` with
    ``clock="virtual"``, so the test's history is stamped by that clock too)."""
    if "sla" not in item.fixturenames:
        item.fixturenames.append("sla")
    if marker.kwargs.get("clock") == "virtual" and "clock" not in item.fixturenames:
        item.fixturenames.insert(0, "clock")


on_marker("sla", _request_fixtures)


@pytest.fixture
def sla(request: pytest.FixtureRequest, history: History) -> Generator[SLARecorder, None, None]:
    """Times operations and checks SLA budgets when the test body ends.

    ``with sla.measure("search"):`` (or ``async with``), ``sla.record(name, seconds,
    ok=...)``, ``sla.open_loop(name, rate=, count=)``; budgets come from
    ``@pytest.mark.sla("p95<200ms", ...)`` or ``sla.add_budgets(...)``. With
    ``clock="virtual"`` on the marker, times come from the test's ``clock`` fixture.
    Samples taken while a fault was active (in the test's history) are filed as
    ``faults``, the others as ``baseline``.
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
    from pytest_resilience._plugin.hang import stop_past_max  # max< budgets stop the body

    try:
        within = _recovery_budget(kwargs)
        recorder = SLARecorder(*args, clock=clock, name=kwargs.get("name"), history=history,
                               abort=stop_past_max if clock is None else None,
                               emit_samples=True)  # the history holds every sample
    except (TypeError, ValueError) as exc:
        pytest.fail(f"@pytest.mark.sla: {exc}", pytrace=False)
    item = request.node
    item.stash[_RECORDER] = recorder
    if within is not None:  # judged on the test's history: its samples and fault windows
        item.stash[_RECOVERY] = within

    def check(passed: bool) -> None:
        __tracebackhide__ = True
        _finish(item, verify=passed)

    after_call(item, check)
    yield recorder
    # The body failed (no check ran), or the fixture was first asked for inside the body:
    # summarise now; a broken budget is then a teardown error.
    _finish(item, verify=True)


def _recovery_budget(kwargs: dict[str, Any]) -> float | None:
    """``recovery=``: seconds after the last fault is lifted to be back inside budget."""
    if kwargs.get("recovery") is None:
        return None
    from pytest_resilience._recovery import parse_duration

    return parse_duration(kwargs["recovery"])


def _finish(item: pytest.Item, *, verify: bool) -> None:
    """Write the budgets' verdicts into the history and the stats into the record, once."""
    __tracebackhide__ = True
    recorder = item.stash.get(_RECORDER, None)
    if recorder is None:
        return
    del item.stash[_RECORDER]
    from pytest_resilience import emit
    from pytest_resilience.kinds import SLA_BUDGET

    summary = recorder.to_dict(histograms=True)
    for verdict in summary.pop("budgets"):
        emit(SLA_BUDGET, item.nodeid, history=recorder.history, **verdict)
        label = {True: "pass", False: "FAIL", None: "unverified"}[verdict["passed"]]
        item.user_properties.append((f"sla:{verdict['budget']}", f"{label}: {verdict['reason']}"))
    item_record(item)["sla"] = summary
    broken = None
    within = item.stash.get(_RECOVERY, None)
    if within is not None and recorder.history is not None:  # metric="recovery" verdicts
        from pytest_resilience._recovery import judge_recovery

        broken = judge_recovery(recorder.history, recorder.budgets, within, source=item.nodeid)
    if verify:
        recorder.verify()
        if broken is not None:
            raise broken
