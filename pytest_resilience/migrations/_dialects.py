"""What differs between databases: transaction control, placeholders, and how to read a
schema and its rows so two states can be compared.

A schema is a frozenset of lines (``table users: column 1 email TEXT null default=None``)
so that two schemas diff line by line; rows are sorted by ``repr``, per table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_resilience import validate
from pytest_resilience.migrations._sql import strip_comments

__all__ = ["Dialect", "Snapshot", "dialect_for", "execute", "quote"]

#: Per table: its column names and its rows (sorted by ``repr``).
Rows = dict[str, tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]]


def quote(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def execute(conn: Any, sql: str, params: Iterable[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one statement on a DB-API connection; the rows it returned, if any."""
    cur = conn.cursor()
    try:
        if params is None:
            cur.execute(sql)
        else:
            cur.execute(sql, tuple(params))
        return [tuple(r) for r in cur.fetchall()] if cur.description else []
    finally:
        cur.close()


@dataclass(frozen=True)
class Snapshot:
    """A database's schema (lines) and rows (per table), without the excluded tables."""

    schema: frozenset[str]
    rows: Rows

    def lost_rows(self, other: Snapshot) -> dict[str, int]:
        """Per table of this snapshot: how many of its rows ``other`` does not hold, on the
        columns both have (a column added or dropped alone loses no row)."""
        lost: dict[str, int] = {}
        for table, (columns, rows) in self.rows.items():
            their_columns, their_rows = other.rows.get(table, ((), ()))
            if columns == their_columns and rows == their_rows:
                continue
            mine = [i for i, c in enumerate(columns) if c in their_columns]
            at = [their_columns.index(columns[i]) for i in mine]
            theirs = Counter(tuple(r[i] for i in at) for r in their_rows)
            missing = 0
            for row in rows:
                key = tuple(row[i] for i in mine)
                if mine and theirs[key] > 0:
                    theirs[key] -= 1
                else:
                    missing += 1
            if missing:
                lost[table] = missing
        return lost


class Dialect(Protocol):
    """Per-database behaviour the runner and the crash explorer need."""

    name: str
    placeholder: str

    def prepare(self, conn: Any) -> Callable[[], None]:
        """Put ``conn`` where explicit BEGIN/COMMIT work; returns what undoes that."""
        ...

    def tables(self, conn: Any) -> list[str]:
        """The user tables, sorted."""
        ...

    def snapshot(self, conn: Any, exclude: Iterable[str]) -> Snapshot:
        """Schema and rows, leaving out the tables named in ``exclude``."""
        ...


def _rows(conn: Any, tables: Iterable[str]) -> Rows:
    out: Rows = {}
    for table in tables:
        cur = conn.cursor()
        try:
            cur.execute(f"SELECT * FROM {quote(table)}")
            columns = tuple(str(d[0]) for d in cur.description)
            out[table] = (columns, tuple(sorted((tuple(r) for r in cur.fetchall()), key=repr)))
        finally:
            cur.close()
    return out


def _normal(sql: str | None) -> str:
    return strip_comments(sql or "")


class SQLiteDialect:
    """sqlite3 (stdlib): transactional DDL with explicit BEGIN on an autocommit connection."""

    name = "sqlite"
    placeholder = "?"

    def prepare(self, conn: Any) -> Callable[[], None]:
        if conn.in_transaction:
            raise ValueError(
                "connection has an open transaction; commit or roll it back before "
                "running migrations (each migration runs in its own transaction).")
        if getattr(conn, "autocommit", None) is False:  # Python 3.12+ PEP 249 mode
            raise ValueError(
                "connection has autocommit=False, which keeps a transaction open; pass a "
                "connection opened with isolation_level=None.")
        previous = conn.isolation_level
        conn.isolation_level = None

        def restore() -> None:
            conn.isolation_level = previous

        return restore

    def tables(self, conn: Any) -> list[str]:
        rows = execute(conn, "SELECT name FROM sqlite_master WHERE type = 'table' "
                             "AND name NOT LIKE 'sqlite_%' ORDER BY name")
        return [r[0] for r in rows]

    def snapshot(self, conn: Any, exclude: Iterable[str]) -> Snapshot:
        skip = set(exclude)
        lines: set[str] = set()
        objects = execute(conn, "SELECT type, name, tbl_name, sql FROM sqlite_master "
                                "WHERE name NOT LIKE 'sqlite_%'")
        tables = []
        for kind, name, table, sql in objects:
            if table in skip:
                continue
            if kind == "table":
                tables.append(name)
                lines.update(self._table(conn, name))
            elif kind == "index":
                lines.add(f"index {name} on {table}: {_normal(sql)}")
            else:
                lines.add(f"{kind} {name} on {table}: {_normal(sql)}")
        return Snapshot(frozenset(lines), _rows(conn, sorted(tables)))

    def _table(self, conn: Any, table: str) -> Iterable[str]:
        q = quote(table)
        for cid, col, typ, notnull, default, pk in execute(conn, f"PRAGMA table_info({q})"):
            yield (f"table {table}: column {cid} {col} {str(typ).upper()} "
                   f"{'not null' if notnull else 'null'} default={default} pk={pk}")
        for _seq, name, unique, origin, partial in execute(conn, f"PRAGMA index_list({q})"):
            if origin == "c":
                continue  # CREATE INDEX: its sql is compared above
            cols = [r[2] for r in execute(conn, f"PRAGMA index_info({quote(name)})")]
            yield (f"table {table}: {origin} index unique={unique} partial={partial} "
                   f"columns={cols}")
        for fk in execute(conn, f"PRAGMA foreign_key_list({q})"):
            _id, _seq, other, src, dst, on_update, on_delete, match = fk
            yield (f"table {table}: foreign key {src} -> {other}.{dst} "
                   f"on update {on_update} on delete {on_delete} match {match}")


class PostgresDialect:
    """psycopg / psycopg2: the connection in autocommit, with explicit BEGIN/COMMIT."""

    name = "postgresql"
    placeholder = "%s"

    def prepare(self, conn: Any) -> Callable[[], None]:
        status = getattr(conn, "info", None)
        in_tx = status is not None and int(getattr(status, "transaction_status", 0)) != 0
        if in_tx:
            raise ValueError(
                "connection has an open transaction; commit or roll it back before "
                "running migrations (each migration runs in its own transaction).")
        previous = conn.autocommit
        conn.autocommit = True

        def restore() -> None:
            conn.autocommit = previous

        return restore

    def tables(self, conn: Any) -> list[str]:
        rows = execute(conn, "SELECT table_name FROM information_schema.tables WHERE "
                             "table_schema = current_schema() AND table_type = 'BASE TABLE' "
                             "ORDER BY table_name")
        return [r[0] for r in rows]

    def snapshot(self, conn: Any, exclude: Iterable[str]) -> Snapshot:
        skip = set(exclude)
        tables = [t for t in self.tables(conn) if t not in skip]
        lines: set[str] = set()
        for table, col, typ, nullable, default, pos in execute(
                conn, "SELECT table_name, column_name, data_type, is_nullable, column_default, "
                      "row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position) "
                      "FROM information_schema.columns WHERE table_schema = current_schema()"):
            if table not in skip:
                lines.add(f"table {table}: column {col} {typ} nullable={nullable} "
                          f"default={default} position={pos}")
        for table, name, definition in execute(
                conn, "SELECT tablename, indexname, indexdef FROM pg_indexes "
                      "WHERE schemaname = current_schema()"):
            if table not in skip:
                lines.add(f"index {name} on {table}: {definition}")
        for table, name, definition in execute(
                conn, "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                      "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace"):
            if table.strip('"') not in skip:
                lines.add(f"constraint {name} on {table}: {definition}")
        for name, definition in execute(
                conn, "SELECT table_name, view_definition FROM information_schema.views "
                      "WHERE table_schema = current_schema()"):
            lines.add(f"view {name}: {_normal(definition)}")
        for table, name, timing, event, action in execute(
                conn, "SELECT event_object_table, trigger_name, action_timing, "
                      "event_manipulation, action_statement FROM information_schema.triggers "
                      "WHERE trigger_schema = current_schema()"):
            lines.add(f"trigger {name} on {table}: {timing} {event} {action}")
        return Snapshot(frozenset(lines), _rows(conn, tables))


_DIALECTS: dict[str, Dialect] = {"sqlite": SQLiteDialect(), "postgresql": PostgresDialect()}


def dialect_for(conn: Any, name: str | None = None) -> Dialect:
    """The dialect named ``name``, or the one ``conn``'s driver module implies."""
    if name is None:
        module = type(conn).__module__.split(".")[0]
        name = {"sqlite3": "sqlite", "_sqlite3": "sqlite", "psycopg": "postgresql",
                "psycopg2": "postgresql"}.get(module)
        if name is None:
            raise TypeError(
                f"cannot tell the database of a {type(conn).__module__}."
                f"{type(conn).__name__} connection; pass dialect='sqlite' or "
                "dialect='postgresql'.")
    return _DIALECTS[validate.one_of(name, "dialect", tuple(sorted(_DIALECTS)),
                                     what="a supported dialect")]
