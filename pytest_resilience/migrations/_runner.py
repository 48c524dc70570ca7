"""The migration runner: ``upgrade``/``downgrade``/``status``/``verify`` and dry runs over
any DB-API connection, one transaction per migration, with a history table."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pytest_resilience import Clock, ResilienceError, emit, validate
from pytest_resilience.kinds import (
    MIGRATION_APPLIED,
    MIGRATION_DRIFT,
    MIGRATION_FAILED,
    MIGRATION_ROLLED_BACK,
)
from pytest_resilience.migrations._dialects import Dialect, dialect_for, execute, quote
from pytest_resilience.migrations._errors import (
    DriftError,
    MigrationError,
    NonTransactionalError,
)
from pytest_resilience.migrations._files import Migration, MigrationSet, load_migrations
from pytest_resilience.migrations._sql import reason_for, strip_comments

__all__ = ["BASE", "AppliedMigration", "Drift", "Migrator", "Plan", "PlanStep", "Point",
           "Status", "StatusEntry", "sql_name"]

#: ``downgrade(to=BASE)`` rolls back every migration.
BASE = "base"
Direction = Literal["up", "down"]
State = Literal["applied", "pending", "drifted", "missing"]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SQL_NAME = "letters, digits and underscores, such as 'resilience_migrations'"


def sql_name(value: object, name: str) -> str:
    """``value`` when it is a plain SQL name (a table of the migration tools)."""
    text = validate.text(value, name, what="a plain SQL name", accepted=_SQL_NAME)
    validate.check(_IDENTIFIER.fullmatch(text) is not None, name, value,
                   what="a plain SQL name", accepted=_SQL_NAME)
    return text


@dataclass(frozen=True)
class Point:
    """A statement the runner is about to execute, as passed to ``before_statement``.

    ``kind`` is ``"statement"`` (the migration's own, ``number`` of ``total``, from 1;
    ``total`` 0 when unknown), ``"record"`` (the history row) or ``"commit"``; ``where``
    names what runs it (default: the ``.up.sql``/``.down.sql`` file).
    """

    migration: str
    version: str
    direction: Direction
    kind: Literal["statement", "record", "commit"]
    sql: str
    number: int = 0
    total: int = 0
    where: str = ""

    def describe(self) -> str:
        """``statement 2/3 of 0003_x.up.sql: ALTER TABLE ...`` (one line)."""
        where = self.where or f"{self.migration}.{self.direction}.sql"
        text = strip_comments(self.sql)
        text = text if len(text) <= 80 else text[:77] + "..."
        if self.kind == "statement":
            of = f"/{self.total}" if self.total else ""
            return f"statement {self.number}{of} of {where}: {text}"
        if self.kind == "record":
            return f"the history row of {where}: {text}"
        return f"COMMIT of {where}"


@dataclass(frozen=True)
class PlanStep:
    """One migration of a plan: its direction and the statements it will run."""

    migration: Migration
    direction: Direction
    statements: tuple[str, ...]

    @property
    def transactional(self) -> bool:
        """Whether the step runs in one transaction."""
        return self.migration.transactional


@dataclass(frozen=True)
class Plan:
    """What ``upgrade``/``downgrade`` will do (or did); ``str(plan)`` is the SQL script."""

    direction: Direction
    steps: tuple[PlanStep, ...]
    dry_run: bool = False

    @property
    def versions(self) -> list[str]:
        """The versions the plan applies or rolls back, in order."""
        return [s.migration.version for s in self.steps]

    def __str__(self) -> str:
        if not self.steps:
            return f"-- {self.direction}grade: nothing to do"
        lines = [f"-- {self.direction}grade plan: {len(self.steps)} migration(s)"]
        for step in self.steps:
            mode = "transactional" if step.transactional else "NOT transactional"
            lines.append(f"-- {step.migration.label}.{step.direction}.sql ({mode})")
            if step.transactional:
                lines.append("BEGIN;")
            lines.extend(f"{s};" for s in step.statements)
            if step.transactional:
                lines.append("COMMIT;")
        return "\n".join(lines)


@dataclass(frozen=True)
class AppliedMigration:
    """A row of the history table."""

    version: str
    name: str
    checksum: str
    applied_at: str
    duration: float


@dataclass(frozen=True)
class Drift:
    """An applied migration whose up file changed (``current`` is None: the file is gone)."""

    version: str
    file: str
    applied: str
    current: str | None

    def __str__(self) -> str:
        if self.current is None:
            return (f"{self.file} was applied with checksum {self.applied[:12]} and is no "
                    "longer in the migrations directory")
        return (f"{self.file} was applied with checksum {self.applied[:12]}, it now has "
                f"{self.current[:12]}")


@dataclass(frozen=True)
class StatusEntry:
    """One migration's state: ``applied``, ``pending``, ``drifted`` or ``missing``."""

    version: str
    name: str
    state: State
    applied: AppliedMigration | None = None


@dataclass(frozen=True)
class Status:
    """Every migration's state, in apply order, and the current version."""

    current: str | None
    entries: tuple[StatusEntry, ...] = field(default=())

    @property
    def pending(self) -> list[str]:
        """Versions not applied yet."""
        return [e.version for e in self.entries if e.state == "pending"]

    @property
    def applied(self) -> list[str]:
        """Versions applied (drifted ones included)."""
        return [e.version for e in self.entries if e.state in ("applied", "drifted")]

    def __str__(self) -> str:
        lines = [f"current: {self.current or BASE}"]
        for e in self.entries:
            when = f"  {e.applied.applied_at}" if e.applied else ""
            lines.append(f"{e.state:<8} {e.version}_{e.name}{when}")
        return "\n".join(lines)


class Migrator:
    """Applies a ``MigrationSet`` to a DB-API connection (sqlite3, psycopg, psycopg2).

    Each migration runs in one transaction with its history row (version, name,
    checksum, applied_at, duration) unless its up file says ``-- transactional: false``;
    a statement that cannot run in a transaction is refused before anything runs.
    ``before_statement`` is called with a ``Point`` before each statement the runner
    executes while applying (the crash explorer raises from it).
    """

    def __init__(
        self,
        connection: Any,
        migrations: MigrationSet | str | Path,
        *,
        table: str = "resilience_migrations",
        dialect: str | None = None,
        clock: Clock | None = None,
        name: str = "migrations",
        before_statement: Callable[[Point], None] | None = None,
    ) -> None:
        table = sql_name(table, "table")
        if not isinstance(migrations, MigrationSet):
            migrations = load_migrations(validate.path(
                migrations, "migrations", what="a migration set",
                accepted="a MigrationSet or the path of a migrations directory"))
        self.connection = connection
        self.migrations = migrations
        self.table = table
        self.dialect: Dialect = dialect_for(connection, dialect)
        self.clock: Clock = validate.clock(clock)
        self.name = validate.text(name, "name")
        self.before_statement = validate.callable_or_none(before_statement,
                                                          "before_statement")

    # -- reading -----------------------------------------------------------------------
    def history(self) -> list[AppliedMigration]:
        """The history table's rows (empty when the table does not exist yet)."""
        if self.table not in self.dialect.tables(self.connection):
            return []
        rows = execute(self.connection,
                       f"SELECT version, name, checksum, applied_at, duration "
                       f"FROM {quote(self.table)}")
        return [AppliedMigration(str(v), str(n), str(c), str(a), float(d))
                for v, n, c, a, d in rows]

    def verify(self) -> list[Drift]:
        """Applied migrations whose up file changed or vanished (empty: all match)."""
        drifts = []
        for row in self.history():
            try:
                migration = self.migrations.get(row.version)
            except MigrationError:
                drifts.append(Drift(row.version, f"{row.version}_{row.name}.up.sql",
                                    row.checksum, None))
                continue
            if migration.checksum != row.checksum:
                drifts.append(Drift(row.version, f"{migration.label}.up.sql", row.checksum,
                                    migration.checksum))
        return drifts

    def status(self) -> Status:
        """Each migration's state and the current version."""
        applied = {row.version: row for row in self.history()}
        drifted = {d.version for d in self.verify()}
        entries = []
        for m in self.migrations:
            row = applied.pop(m.version, None)
            state: State = ("pending" if row is None else
                            "drifted" if m.version in drifted else "applied")
            entries.append(StatusEntry(m.version, m.name, state, row))
        entries.extend(StatusEntry(r.version, r.name, "missing", r) for r in applied.values())
        done = [e.version for e in entries if e.state in ("applied", "drifted")
                and e.version in self.migrations.versions]
        current = max(done, key=self.migrations.index) if done else None
        return Status(current, tuple(entries))

    # -- planning ----------------------------------------------------------------------
    def _applied_in_order(self) -> list[Migration]:
        drifts = self.verify()
        if drifts:
            for d in drifts:
                emit(MIGRATION_DRIFT, self.name, self.clock, version=d.version, file=d.file,
                     applied_checksum=d.applied, current_checksum=d.current)
            raise DriftError(
                "refusing to run: " + "; ".join(map(str, drifts)) + ". An applied migration "
                "is never changed: restore the file and put the change in a new migration.",
                context={"drift": [str(d) for d in drifts]})
        applied = {row.version for row in self.history()}
        order = [m for m in self.migrations if m.version in applied]
        if order:
            last = self.migrations.index(order[-1].version)
            gaps = [m.label for m in self.migrations[:last] if m.version not in applied]
            if gaps:
                raise MigrationError(
                    f"{', '.join(gaps)} not applied but {order[-1].label}, which comes after "
                    "in the plan, is. Apply order is fixed: give the new migration a later "
                    "version, or '-- depends:' on the applied one.")
        return order

    def plan_upgrade(self, to: str | None = None) -> Plan:
        """The migrations ``upgrade(to)`` would apply (``to``: a version; None: all)."""
        applied = {m.version for m in self._applied_in_order()}
        end = len(self.migrations) if to is None else self.migrations.index(to) + 1
        todo = [m for m in self.migrations[:end] if m.version not in applied]
        return self._plan("up", todo)

    def plan_downgrade(self, to: str | None = None) -> Plan:
        """The migrations ``downgrade(to)`` would roll back: ``to`` a version (keep it and
        what comes before), ``BASE`` (all) or None (the last applied one)."""
        applied = self._applied_in_order()
        if to is None:
            todo = applied[-1:]
        elif to == BASE:
            todo = list(reversed(applied))
        else:
            keep = self.migrations.index(to)
            todo = [m for m in reversed(applied) if self.migrations.index(m.version) > keep]
        if to is None:
            todo = list(reversed(todo))
        missing = [m.label for m in todo if m.down_sql is None]
        if missing:
            raise MigrationError(
                f"cannot roll back {', '.join(missing)}: no .down.sql file. Add "
                f"{missing[0]}.down.sql with the statements that undo it.")
        return self._plan("down", todo)

    def _plan(self, direction: Direction, todo: Sequence[Migration]) -> Plan:
        steps = []
        for m in todo:
            statements = tuple(m.up_statements if direction == "up" else m.down_statements)
            if m.transactional:
                for number, sql in enumerate(statements, 1):
                    reason = reason_for(sql, self.dialect.name)
                    if reason:
                        raise NonTransactionalError(
                            f"{m.label}.{direction}.sql statement {number} "
                            f"({strip_comments(sql)[:60]}): {reason}. Declare "
                            "'-- transactional: false' at the top of the up file to run it "
                            "statement by statement (then a crash can leave it half done).",
                            context={"migration": m.label, "statement": number})
            steps.append(PlanStep(m, direction, statements))
        return Plan(direction, tuple(steps))

    # -- running -----------------------------------------------------------------------
    def upgrade(self, to: str | None = None, *, dry_run: bool = False) -> Plan:
        """Apply pending migrations up to ``to`` (all when None); returns the plan run.

        ``dry_run=True`` returns the plan (``str(plan)`` is its SQL) and changes nothing.
        """
        return self._run(self.plan_upgrade(to), dry_run)

    def downgrade(self, to: str | None = None, *, dry_run: bool = False) -> Plan:
        """Roll back to ``to`` (see ``plan_downgrade``); returns the plan run."""
        return self._run(self.plan_downgrade(to), dry_run)

    def _run(self, plan: Plan, dry_run: bool) -> Plan:
        if dry_run:
            return Plan(plan.direction, plan.steps, dry_run=True)
        restore = self.dialect.prepare(self.connection)
        try:
            if plan.steps:
                execute(self.connection,
                        f"CREATE TABLE IF NOT EXISTS {quote(self.table)} (version TEXT PRIMARY "
                        "KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT "
                        "NULL, duration DOUBLE PRECISION NOT NULL)")
            for step in plan.steps:
                self._step(step)
        finally:
            restore()
        return plan

    def _record(self, step: PlanStep, duration: float) -> tuple[str, tuple[Any, ...]]:
        m, p, table = step.migration, self.dialect.placeholder, quote(self.table)
        if step.direction == "down":
            return f"DELETE FROM {table} WHERE version = {p}", (m.version,)
        applied_at = datetime.fromtimestamp(self.clock.time(), UTC).isoformat(
            timespec="milliseconds")
        return (f"INSERT INTO {table} (version, name, checksum, applied_at, duration) "
                f"VALUES ({p}, {p}, {p}, {p}, {p})",
                (m.version, m.name, m.checksum, applied_at, duration))

    def _point(self, step: PlanStep, kind: Literal["statement", "record", "commit"], sql: str,
               number: int = 0) -> None:
        if self.before_statement is not None:
            m = step.migration
            self.before_statement(Point(m.label, m.version, step.direction, kind, sql, number,
                                        len(step.statements)))

    def _step(self, step: PlanStep) -> None:
        conn, m = self.connection, step.migration
        started = self.clock.monotonic()
        number = 0
        try:
            if step.transactional:
                execute(conn, "BEGIN")
            for number, sql in enumerate(step.statements, 1):
                self._point(step, "statement", sql, number)
                execute(conn, sql)
            number = 0
            record, params = self._record(step, self.clock.monotonic() - started)
            self._point(step, "record", record)
            execute(conn, record, params)
            if step.transactional:
                self._point(step, "commit", "COMMIT")
                execute(conn, "COMMIT")
        except BaseException as exc:
            if step.transactional:
                with contextlib.suppress(Exception):
                    execute(conn, "ROLLBACK")
            emit(MIGRATION_FAILED, self.name, self.clock, version=m.version, name=m.name,
                 direction=step.direction, statement=number, error=repr(exc),
                 rolled_back=step.transactional)
            if isinstance(exc, Exception) and not isinstance(exc, ResilienceError):
                where = f"statement {number}" if number else "its history row"
                undone = ("rolled back" if step.transactional else
                          "NOT rolled back: it is not transactional")
                raise MigrationError(
                    f"{m.label}.{step.direction}.sql failed at {where}: {exc}. The migration "
                    f"was {undone}.",
                    context={"migration": m.label, "statement": number}) from exc
            raise
        duration = self.clock.monotonic() - started
        kind = MIGRATION_APPLIED if step.direction == "up" else MIGRATION_ROLLED_BACK
        emit(kind, self.name, self.clock, version=m.version, name=m.name,
             checksum=m.checksum, statements=len(step.statements),
             transactional=step.transactional, duration=duration)
