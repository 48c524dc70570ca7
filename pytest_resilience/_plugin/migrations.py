"""The migrations family: ``@pytest.mark.migrations(path, ...)`` and the ``migration``
fixture (issue 20).

A test marked ``migrations`` runs once per migration of the set at ``path`` (a directory
of ``.up.sql``/``.down.sql`` files or an ``alembic.ini``; relative to the test file, or
the ini key ``resilience_migrations`` relative to the rootdir); its ``migration``
argument is that migration's ``MigrationCase``. Baselines are built once per session and
shared by the set's tests. Nothing is imported until a marked test is collected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.state import on_marker

if TYPE_CHECKING:
    from pytest_resilience import History, VirtualClock
    from pytest_resilience.migrations import Backend, CrashExplorer, MigrationCase

INI_KEY = "resilience_migrations"
_SETTINGS = ("seed", "kill_sample", "kill_seed", "round_trip", "table", "section", "options")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_KEY, "migrations directory or alembic.ini for @pytest.mark.migrations "
                  "without a path (relative to the rootdir)", default="")


Explorers = dict[tuple[str, str], "CrashExplorer"]


def _misuse(message: str) -> BaseException:
    """A collection error showing only ``message`` (no traceback)."""
    return pytest.fail.Exception(message, pytrace=False)


def _target(config: pytest.Config, marker: pytest.Mark,
            module: Path) -> tuple[Path, dict[str, Any]]:
    """The marker's path (resolved) and settings; refuses what it does not accept."""
    unknown = sorted(set(marker.kwargs) - set(_SETTINGS))
    if unknown or len(marker.args) > 1:
        got = f"keyword(s) {unknown}" if unknown else f"{len(marker.args)} paths"
        raise _misuse(
            f"@pytest.mark.migrations got {got}. Pass one path and keywords from "
            f"{list(_SETTINGS)}.")
    if marker.args:
        path = Path(marker.args[0])
        path = path if path.is_absolute() else module.parent / path
    else:
        ini = str(config.getini(INI_KEY))
        if not ini:
            raise _misuse(
                "@pytest.mark.migrations needs a path (a migrations directory or an "
                f"alembic.ini), or the ini key {INI_KEY}.")
        path = config.rootpath / ini
    return path.resolve(), dict(marker.kwargs)


def _per_migration(metafunc: pytest.Metafunc, marker: pytest.Mark) -> None:
    """One test per migration of the marked set."""
    if "migration" not in metafunc.fixturenames:
        raise _misuse(
            f"{metafunc.definition.nodeid}: a @pytest.mark.migrations test takes the "
            "`migration` argument (one MigrationCase per migration).")
    from pytest_resilience.migrations import open_source

    path, settings = _target(metafunc.config, marker, Path(str(metafunc.definition.path)))
    source = open_source(path, **{k: settings[k] for k in ("table", "section", "options")
                                  if k in settings})
    steps = source.steps()
    metafunc.parametrize("migration", [s.version for s in steps],
                         ids=[s.label for s in steps], indirect=True)


on_marker("migrations", generate=_per_migration)


@pytest.fixture(scope="session")
def migration_backend() -> Backend | None:
    """Where crash-explored databases live; None: SQLite files in a temp dir.

    Override it (session scope) to return a ``PostgresBackend(dsn)``.
    """
    return None


@pytest.fixture(scope="session")
def _migration_explorers() -> Iterator[Explorers]:
    """The session's explorers, one per marked set and settings; closed at the end."""
    explorers: Explorers = {}
    try:
        yield explorers
    finally:
        for explorer in explorers.values():
            explorer.close()
        explorers.clear()


@pytest.fixture
def migration(
    request: pytest.FixtureRequest,
    migration_backend: Backend | None,
    _migration_explorers: Explorers,
    clock: VirtualClock,
    history: History,
) -> MigrationCase:
    """This migration's ``MigrationCase`` in a ``@pytest.mark.migrations`` test (its crash
    points are ``migration.crash_point`` events in the test's history)."""
    marker = request.node.get_closest_marker("migrations")
    if marker is None or not hasattr(request, "param"):
        pytest.fail("The `migration` fixture needs @pytest.mark.migrations(path) on the test.",
                    pytrace=False)
    from pytest_resilience.migrations import CrashExplorer, MigrationCase, open_source

    path, settings = _target(request.config, marker, Path(str(request.node.path)))
    key = (str(path), repr(sorted(settings.items())))
    explorer = _migration_explorers.get(key)
    if explorer is None:
        source = open_source(path, **{k: settings.pop(k) for k in ("table", "section", "options")
                                      if k in settings})
        explorer = CrashExplorer(source, backend=migration_backend, **settings)
        _migration_explorers[key] = explorer
    explorer.clock = clock
    return MigrationCase(explorer, str(request.param))
