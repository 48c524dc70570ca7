"""The plugin's session: one object in one stash key, and its one xdist wire format.

Each test that uses the harness gets a test history (the ``history`` fixture); the
record built from it (``_plugin/records.py``) travels on ``report.user_properties`` under
``RECORD_KEY``, plain builtins, so it reaches the xdist controller like any report. The
controller merges records into ``ResilienceSession.records``, and the SLA histograms
they carry into ``operations``; every report renders those and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest.nodes import Node

    from pytest_resilience import Clock
    from pytest_resilience.sla._recorder import OperationStats

__all__ = [
    "PLAN_RESETS",
    "RECORD_KEY",
    "SESSION",
    "ResilienceSession",
    "allowed_modules",
    "apply_marker_rules",
    "derive_seed",
    "generate_for_markers",
    "get_state",
    "item_record",
    "on_marker",
    "register_once",
    "requests",
    "reset_after_each_plan",
    "test_clock",
]

#: The ``user_properties`` key under which each test's record travels.
RECORD_KEY = "resilience"


@dataclass
class ResilienceSession:
    """The session seed, the report directory, per-test records and merged SLA data."""

    seed: int
    seed_source: str
    report_dir: Path | None = None
    #: nodeid -> the test's record (outcome, duration, faults, verdicts, sla, chaos, ...).
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (operation, variant) -> latencies merged over every test.
    operations: dict[tuple[str, str], OperationStats] = field(default_factory=dict)
    benchmarks: list[dict[str, Any]] = field(default_factory=list)
    report_paths: list[str] = field(default_factory=list)
    lost_workers: list[str] = field(default_factory=list)
    #: Names of per-session hook objects already registered (hooks on first use).
    registered: set[str] = field(default_factory=set)
    #: The report ``--resilience-compare`` names, loaded at configure (controller only).
    baseline: dict[str, Any] | None = None
    #: The chaos corpus (a Hypothesis ``ExampleDatabase`` or None), built on first use.
    chaos_db: Any = None
    chaos_db_built: bool = False
    #: The arming hook this session replaced (an outer session's), given back at the end.
    arm_hook_before: Callable[[], None] | None = None

    def add_operation(self, operation: str, variant: str, stats: OperationStats) -> None:
        """Merge ``stats`` into the session's stats for ``operation`` under ``variant``."""
        current = self.operations.get((operation, variant))
        if current is None:
            from pytest_resilience.sla._recorder import OperationStats

            current = self.operations[(operation, variant)] = OperationStats()
        current.merge(stats)


SESSION = pytest.StashKey[ResilienceSession]()
#: Per chaos test, for each fixture the body may change: a function called before the
#: first plan that returns the reset to call after each plan.
PLAN_RESETS = pytest.StashKey[list[Callable[[], Callable[[], None]]]]()


def register_once(config: pytest.Config, name: str, make: Callable[[], object]) -> None:
    """Register the plugin object ``make()`` under ``name``, once per session (the hooks
    that only harness tests need are registered on first use)."""
    session = get_state(config)
    if name not in session.registered:
        session.registered.add(name)
        config.pluginmanager.register(make(), name)


def get_state(config: pytest.Config) -> ResilienceSession:
    """The session; raises a clear error if the plugin was not configured."""
    try:
        return config.stash[SESSION]
    except KeyError:
        raise RuntimeError(
            "pytest-resilience is not configured in this session. Load it with "
            "`-p resilience`."
        ) from None


_ITEM_RECORD = pytest.StashKey[dict[str, Any]]()


def item_record(item: pytest.Item) -> dict[str, Any]:
    """The part of ``item``'s record its fixtures fill in (attached at teardown)."""
    record = item.stash.get(_ITEM_RECORD, None)
    if record is None:
        from pytest_resilience._plugin.per_test import use_harness

        use_harness(item.config)
        record = item.stash[_ITEM_RECORD] = {}
    return record


def take_item_record(item: pytest.Item) -> dict[str, Any] | None:
    """``item_record`` removed from the item (it is attached once)."""
    record = item.stash.get(_ITEM_RECORD, None)
    if record is not None:
        del item.stash[_ITEM_RECORD]
    return record


def allowed_modules(config: pytest.Config) -> list[str]:
    """Modules a plan loaded from a file may name although they are not imported yet."""
    return [*config.getini("resilience_allow_modules"),
            *config.getoption("resilience_allow_module")]


def derive_seed(session_seed: int, nodeid: str) -> int:
    """A test's seed: derived from the session seed and its node id (order-independent)."""
    digest = hashlib.sha256(f"{session_seed}:{nodeid}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def test_clock(request: pytest.FixtureRequest) -> Clock:
    """The test's clock: the ``clock`` fixture (virtual) when the test uses it, else the
    system clock. Every harness fixture stamps the test's events with this one clock."""
    if "clock" in request.fixturenames:
        clock: Clock = request.getfixturevalue("clock")
        return clock
    from pytest_resilience import SystemClock

    return SystemClock()


test_clock.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


#: What a marked test does at collection: ``rule(item, marker)`` (request fixtures).
MarkerRule = Callable[[pytest.Function, pytest.Mark], None]
#: What a marked test function does at parametrisation: ``generate(metafunc, marker)``.
GenerateRule = Callable[[pytest.Metafunc, pytest.Mark], None]

_MARKER_RULES: dict[str, MarkerRule] = {}
_GENERATE_RULES: dict[str, GenerateRule] = {}


def on_marker(name: str, rule: MarkerRule | None = None, *,
              generate: GenerateRule | None = None) -> None:
    """Run ``rule`` for each collected test marked ``name`` and ``generate`` for each
    marked test function being parametrised (with the closest such marker). The family
    modules declare theirs at import; the core plugin runs them all in one pass."""
    if rule is not None:
        _MARKER_RULES[name] = rule
    if generate is not None:
        _GENERATE_RULES[name] = generate


def requests(*fixtures: str) -> MarkerRule:
    """A rule making a marked test request ``fixtures`` (a marker requests its fixture
    by itself)."""

    def rule(item: pytest.Function, marker: pytest.Mark) -> None:
        for fixture in fixtures:
            if fixture not in item.fixturenames:
                item.fixturenames.append(fixture)

    return rule


_MARKER_NAMES = pytest.StashKey[frozenset[str]]()


def _marker_names(node: Node | None) -> frozenset[str]:
    """Names of the markers on ``node`` and above it (kept on each node: the items of
    one module or class share the walk up)."""
    if node is None:
        return frozenset()
    names = node.stash.get(_MARKER_NAMES, None)
    if names is None:
        names = frozenset({m.name for m in node.own_markers} | _marker_names(node.parent))
        node.stash[_MARKER_NAMES] = names
    return names


def _closest(node: pytest.Item, names: dict[str, Any]) -> dict[str, pytest.Mark]:
    """The closest marker of each of ``names`` on ``node`` (none, most of the time)."""
    found: dict[str, pytest.Mark] = {}
    own = node.own_markers
    if ((not own or names.keys().isdisjoint([m.name for m in own]))
            and names.keys().isdisjoint(_marker_names(node.parent))):
        return found
    for marker in node.iter_markers():
        if marker.name in names and marker.name not in found:
            found[marker.name] = marker
    return found


def apply_marker_rules(items: list[pytest.Item]) -> None:
    """Every marker rule, in one pass over the collected items (the family modules'
    rules run in the reverse order of their declaration)."""
    rules = _MARKER_RULES
    order = list(reversed(rules))
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        found = _closest(item, rules)
        for name in order:
            if name in found:
                rules[name](item, found[name])


def generate_for_markers(metafunc: pytest.Metafunc) -> None:
    """Every generate rule whose marker the test function carries."""
    rules = _GENERATE_RULES
    found = _closest(metafunc.definition, rules)
    for name in reversed(rules):
        if name in found:
            rules[name](metafunc, found[name])


def reset_after_each_plan(node: pytest.Item, start: Callable[[], Callable[[], None]]) -> None:
    """In a ``chaos`` test, call ``start()`` before the first plan and the reset it returns
    after each plan, so a fixture the body may change puts itself back and every plan
    starts from the same state."""
    if node.get_closest_marker("chaos") is not None:
        node.stash.setdefault(PLAN_RESETS, []).append(start)
