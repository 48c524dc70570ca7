"""The ``chaos`` marker's runner and ``--resilience-replay``: property-based fault runs.

``@pytest.mark.chaos(failpoints=..., families=..., checks=..., must_fire=...)`` runs the
test body once per generated fault plan; the test asks for the ``chaos`` fixture, which
is that plan's ``ChaosRun``. A failure is shrunk to the smallest plan, written as JSON and
reported with the one command line that replays it. Hypothesis is imported only when a
chaos test runs. ``--resilience-chaos-db`` shares failing plans between runs and runners;
``shards=N`` splits a chaos test into N items with their own seeds (for pytest-xdist).
"""

from __future__ import annotations

import inspect
import json
import math
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.calls import test_history
from pytest_resilience._plugin.state import derive_seed, get_state, on_marker, requests

if TYPE_CHECKING:
    from hypothesis.database import ExampleDatabase

    from faults.strategies import ChaosPlan, Family
    from pytest_resilience.chaos import ChaosRun

REPLAY_OPTION = "--resilience-replay"
CHAOS_DB_OPTION = "--resilience-chaos-db"
SHARD_FIXTURE = "resilience_chaos_shard"
_SETTINGS = ("failpoints", "families", "max_faults", "horizon", "calls", "max_examples",
             "checks", "allow", "must_fire", "sometimes", "max_delay", "shards")
_RUN_KEYS = ("max_faults", "horizon", "calls", "max_examples", "must_fire", "sometimes")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience")
    group.addoption(
        REPLAY_OPTION,
        action="store",
        default=None,
        dest="resilience_replay",
        metavar="FILE",
        help="run each chaos test once, under the fault plan saved in FILE (as printed "
        "by a failing chaos test), instead of generating plans.",
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


_CHAOS_DB = pytest.StashKey["ExampleDatabase | None"]()


def chaos_database(config: pytest.Config) -> ExampleDatabase | None:
    """The session's chaos corpus (``--resilience-chaos-db`` or its ini key), built once."""
    if _CHAOS_DB not in config.stash:
        from pytest_resilience.chaos._corpus import example_database

        value = config.getoption("resilience_chaos_db") or config.getini("resilience_chaos_db")
        try:
            config.stash[_CHAOS_DB] = example_database(str(value))
        except ValueError as exc:
            raise pytest.UsageError(f"{CHAOS_DB_OPTION}={exc}") from None
    return config.stash[_CHAOS_DB]


_RUNNER = "resilience-chaos-runner"


class ChaosSlot:
    """Stands in for the ``chaos`` fixture until the runner passes each plan's run."""

    def __repr__(self) -> str:
        return "<chaos: replaced by each plan's ChaosRun>"


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> ChaosSlot:
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
    from faults.strategies import Family, failpoints

    families: list[Family | str] = [
        f if isinstance(f, str | Family) or not callable(f) else _from_fixtures(f, funcargs)
        for f in settings.get("families", ())
    ]
    sites = settings.get("failpoints")
    if sites:
        families.insert(0, failpoints(sites, max_delay=float(settings.get("max_delay", 0.0))))
    if not families:
        pytest.fail("@pytest.mark.chaos needs failpoints={...} or families=[...] to generate "
                    "plans from.", pytrace=False)
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
    return dict(marker.kwargs)


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


def _replay_command(item: pytest.Function, plan: ChaosPlan) -> str:
    path = _plan_path(item)
    path.write_text(json.dumps({"test": item.nodeid, **plan.to_dict()}, indent=2) + "\n",
                    encoding="utf-8")
    seed = get_state(item.config).seed
    return (f"pytest '{item.nodeid}' {REPLAY_OPTION}={path}\n"
            f"    (or regenerate the run: pytest '{item.nodeid}' --resilience-seed={seed})")


def _replay_plan(item: pytest.Function) -> ChaosPlan | None:
    file = item.config.getoption("resilience_replay")
    if not file:
        return None
    from faults.strategies import ChaosPlan

    try:
        data = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(f"{REPLAY_OPTION}={file}: cannot read the plan ({exc}). Pass "
                                "the file a failing chaos test printed.") from None
    if data.get("test") not in (None, item.nodeid):
        return None
    return ChaosPlan.from_dict(data)


class _ChaosCall:
    """Runs chaos-marked bodies; registered by the first ``chaos`` fixture of a session,
    so tests without the marker pay nothing."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run a ``chaos``-marked test body once per plan (or once, under a replayed plan)."""
        marker = pyfuncitem.get_closest_marker("chaos")
        if marker is None:
            return None
        from pytest_resilience.chaos import ChaosFailure, ChaosVacuous, replay, run_chaos

        settings = _settings(marker)
        families = _families(settings, pyfuncitem.funcargs)
        names = pyfuncitem._fixtureinfo.argnames

        def body(run: ChaosRun) -> Any:
            args = {n: run if n == "chaos" else pyfuncitem.funcargs[n] for n in names}
            return pyfuncitem.obj(**args)

        common: dict[str, Any] = {
            "families": families,
            "checks": tuple(settings.get("checks", ())),
            "allow": tuple(settings.get("allow", ())),
            "replay_command": lambda plan: _replay_command(pyfuncitem, plan),
        }
        state = get_state(pyfuncitem.config)
        failure: ChaosFailure | ChaosVacuous | None = None
        try:
            plan = _replay_plan(pyfuncitem)
            if plan is not None:
                replay(body, plan, **common)
                _record(pyfuncitem, plans=1, failures=0, fired={})
                return True
            run_settings = {k: settings[k] for k in _RUN_KEYS if k in settings}
            key = pyfuncitem.nodeid
            callspec = getattr(pyfuncitem, "callspec", None)
            if callspec is not None and SHARD_FIXTURE in callspec.params:
                index, count = callspec.params[SHARD_FIXTURE]
                run_settings["max_examples"] = math.ceil(
                    int(settings.get("max_examples", 100)) / count)
                key = key.replace(f"chaos-shard-{index + 1}of{count}", "chaos-shard")
            result = run_chaos(
                body,
                seed=derive_seed(state.seed, pyfuncitem.nodeid),
                database=chaos_database(pyfuncitem.config),
                database_key=key,
                **common,
                **run_settings,
            )
        except (ChaosFailure, ChaosVacuous) as exc:
            failure = exc
        if failure is not None:
            minimal = failure if isinstance(failure, ChaosFailure) else None
            _record(pyfuncitem, plans=minimal.plans_run if minimal else 0, failures=1, fired={},
                    plan=minimal.plan.to_dict() if minimal else None,
                    replay=minimal.replay_command if minimal else None,
                    error=str(failure).splitlines()[0])
            pytest.fail(str(failure), pytrace=False)
        _record(pyfuncitem, plans=result.plans, failures=0, fired=dict(result.fired))
        return True


def _record(item: pytest.Function, **attrs: Any) -> None:
    """The run's ``chaos.run`` event, in the test's own history."""
    from pytest_resilience import emit
    from pytest_resilience.kinds import CHAOS_RUN

    history = test_history(item)
    if history is not None:
        emit(CHAOS_RUN, item.nodeid, history=history, **attrs)
