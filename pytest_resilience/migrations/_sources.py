"""What the crash explorer drives: a migration set it can upgrade and downgrade one step
at a time, with a hook before every statement. ``SqlSource`` wraps our runner; the
alembic source lives in ``_alembic.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pytest_resilience import validate
from pytest_resilience.migrations._backends import Backend
from pytest_resilience.migrations._files import MigrationSet, load_migrations
from pytest_resilience.migrations._runner import BASE, Migrator, Point, sql_name

__all__ = ["Hook", "Source", "SqlSource", "Step", "source_from_spec"]

Hook = Callable[[Point], None]


@dataclass(frozen=True)
class Step:
    """One migration of a source, in apply order: its version, label and predecessor."""

    version: str
    label: str
    previous: str | None
    transactional: bool = True


class Source(Protocol):
    """A migration set the explorer can run one version at a time."""

    #: Tables the source keeps for itself (left out of schema and row comparisons).
    bookkeeping: tuple[str, ...]

    def steps(self) -> list[Step]:
        """Every migration, in apply order."""
        ...

    def upgrade(self, backend: Backend, db: str, to: str, hook: Hook | None = None) -> None:
        """Upgrade ``db`` to version ``to``, calling ``hook`` before each statement."""
        ...

    def downgrade(self, backend: Backend, db: str, to: str | None) -> None:
        """Downgrade ``db`` to version ``to`` (None: before the first migration)."""
        ...

    def current(self, conn: Any) -> str | None:
        """The version ``conn``'s database is at (None: no migration applied)."""
        ...

    def spec(self) -> dict[str, Any] | None:
        """JSON-able arguments that rebuild this source in a child process (None: none)."""
        ...


class SqlSource:
    """A directory of ``.up.sql``/``.down.sql`` migrations run by ``Migrator``."""

    def __init__(self, migrations: MigrationSet | str | Path, *,
                 table: str = "resilience_migrations") -> None:
        self.migrations = (migrations if isinstance(migrations, MigrationSet)
                           else load_migrations(validate.path(migrations, "migrations")))
        self.table = sql_name(table, "table")
        self.bookkeeping: tuple[str, ...] = (table,)

    def steps(self) -> list[Step]:
        previous = None
        out = []
        for m in self.migrations:
            out.append(Step(m.version, m.label, previous, m.transactional))
            previous = m.version
        return out

    def _migrator(self, conn: Any, hook: Hook | None = None) -> Migrator:
        return Migrator(conn, self.migrations, table=self.table, before_statement=hook)

    def upgrade(self, backend: Backend, db: str, to: str, hook: Hook | None = None) -> None:
        conn = backend.connect(db)
        try:
            self._migrator(conn, hook).upgrade(to)
        finally:
            conn.close()

    def downgrade(self, backend: Backend, db: str, to: str | None) -> None:
        conn = backend.connect(db)
        try:
            self._migrator(conn).downgrade(BASE if to is None else to)
        finally:
            conn.close()

    def current(self, conn: Any) -> str | None:
        return self._migrator(conn).status().current

    def spec(self) -> dict[str, Any] | None:
        if self.migrations.source is None:
            return None
        return {"kind": "sql", "directory": str(self.migrations.source), "table": self.table}


def source_from_spec(spec: dict[str, Any]) -> Source:
    """Inverse of ``Source.spec()``."""
    if spec["kind"] == "sql":
        return SqlSource(spec["directory"], table=spec["table"])
    from pytest_resilience.migrations._alembic import AlembicSource

    return AlembicSource(spec["config"], **spec.get("options", {}))
