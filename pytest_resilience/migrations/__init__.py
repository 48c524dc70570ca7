"""Versioned SQL migrations that roll back, and the crash-point explorer that proves a
migration set (ours or alembic's) survives a crash before every statement.

Runner: ``load_migrations(dir)`` parses ``NNNN_name.up.sql``/``.down.sql`` files (headers
``-- depends: 0003``, ``-- transactional: false``); ``Migrator(conn, dir)`` applies them
through any DB-API connection (sqlite3, psycopg, psycopg2) with ``upgrade(to=)``,
``downgrade(to=)``, ``status()``, ``verify()`` and ``dry_run=True``.

Crash testing: ``explore_crashes(dir_or_source, ...)`` / ``CrashExplorer`` return a
``CrashReport``; ``AlembicSource("alembic.ini")`` (extra ``migrations``) explores an
alembic project. CLI: ``python -m pytest_resilience migrate status|up|down|create|verify``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_resilience.migrations._backends import Backend, PostgresBackend, SQLiteBackend
from pytest_resilience.migrations._case import MigrationCase, open_source
from pytest_resilience.migrations._crash import (
    CrashExplorer,
    CrashFinding,
    CrashInjected,
    CrashReport,
    MigrationReport,
    auto_seed,
    explore_crashes,
)
from pytest_resilience.migrations._dialects import Snapshot
from pytest_resilience.migrations._errors import (
    DependencyError,
    DriftError,
    MigrationError,
    NonTransactionalError,
)
from pytest_resilience.migrations._files import Migration, MigrationSet, load_migrations
from pytest_resilience.migrations._runner import (
    BASE,
    AppliedMigration,
    Drift,
    Migrator,
    Plan,
    PlanStep,
    Point,
    Status,
    StatusEntry,
)
from pytest_resilience.migrations._sources import Source, SqlSource, Step
from pytest_resilience.migrations._sql import non_transactional_reason, split_statements

if TYPE_CHECKING:
    from pytest_resilience.migrations._alembic import AlembicSource

__all__ = [
    "BASE",
    "AlembicSource",
    "AppliedMigration",
    "Backend",
    "CrashExplorer",
    "CrashFinding",
    "CrashInjected",
    "CrashReport",
    "DependencyError",
    "Drift",
    "DriftError",
    "Migration",
    "MigrationCase",
    "MigrationError",
    "MigrationReport",
    "MigrationSet",
    "Migrator",
    "NonTransactionalError",
    "Plan",
    "PlanStep",
    "Point",
    "PostgresBackend",
    "SQLiteBackend",
    "Snapshot",
    "Source",
    "SqlSource",
    "Status",
    "StatusEntry",
    "Step",
    "auto_seed",
    "explore_crashes",
    "load_migrations",
    "non_transactional_reason",
    "open_source",
    "split_statements",
]


def __getattr__(name: str) -> Any:
    if name == "AlembicSource":  # needs the optional alembic + SQLAlchemy
        from pytest_resilience.migrations._alembic import AlembicSource

        return AlembicSource
    raise AttributeError(f"module 'pytest_resilience.migrations' has no attribute {name!r}")
