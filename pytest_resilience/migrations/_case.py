"""``MigrationCase``: one migration of a set, as the ``migration`` fixture hands it to a
test, and ``open_source``: a migrations directory or an ``alembic.ini`` as a source."""

from __future__ import annotations

from pathlib import Path

from pytest_resilience import validate
from pytest_resilience.migrations import _checks
from pytest_resilience.migrations._crash import CrashExplorer, MigrationReport
from pytest_resilience.migrations._errors import MigrationError
from pytest_resilience.migrations._runner import sql_name
from pytest_resilience.migrations._sources import Source, SqlSource

__all__ = ["MigrationCase", "open_source"]


def open_source(path: str | Path, *, table: str = "resilience_migrations",
                section: str = "alembic", options: dict[str, str] | None = None) -> Source:
    """A directory of ``.sql`` migrations, or an alembic config file (``*.ini``)."""
    target = validate.path(path, "path", what="a migration source",
                           accepted="a migrations directory or an alembic .ini file")
    table = sql_name(table, "table")
    section = validate.text(section, "section", what="an ini section name")
    options = _checks.options(options)
    if target.is_dir():
        return SqlSource(target, table=table)
    if target.is_file() and target.suffix == ".ini":
        from pytest_resilience.migrations._alembic import AlembicSource

        return AlembicSource(target, section=section, options=options)
    raise MigrationError(
        f"{str(target)!r} is neither a migrations directory nor an alembic .ini file.")


class MigrationCase:
    """One migration under test: ``report`` explores its crash points (once), ``check()``
    fails with the report unless every point and the round trip passed."""

    def __init__(self, explorer: CrashExplorer, version: str) -> None:
        validate.check(isinstance(explorer, CrashExplorer), "explorer", explorer,
                       what="a crash explorer", accepted="a CrashExplorer", kind=TypeError)
        known = [s.version for s in explorer.steps]
        validate.text(version, "version", what="a migration version",
                      accepted=f"one of {known}")
        validate.check(version in known, "version", version, what="a migration version",
                       accepted=f"one of {known}")
        self.explorer = explorer
        self.version = version
        self.label = next(s.label for s in explorer.steps if s.version == version)
        self._report: MigrationReport | None = None

    @property
    def report(self) -> MigrationReport:
        """The crash points of this migration and what went wrong at them."""
        if self._report is None:
            self._report = self.explorer.explore(self.version)
        return self._report

    def check(self) -> MigrationReport:
        """Raise ``AssertionError`` with the explanation unless the migration is crash-safe."""
        report = self.report
        if not report.crash_safe:
            raise AssertionError(report.explain())
        return report

    def __repr__(self) -> str:
        return f"<MigrationCase {self.label}>"

