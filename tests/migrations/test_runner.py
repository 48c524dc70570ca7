"""The runner on real SQLite files: order, history, drift, dry runs, transactions."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_resilience import History, VirtualClock
from pytest_resilience.migrations import (
    BASE,
    DriftError,
    MigrationError,
    Migrator,
    NonTransactionalError,
    SQLiteBackend,
)

WriteSet = Callable[..., Path]
Files = dict[str, str]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "app.sqlite3", isolation_level=None)
    yield conn
    conn.close()


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def test_upgrade_applies_in_dependency_order_and_records_history(
        write_set: WriteSet, db: sqlite3.Connection, clock: VirtualClock) -> None:
    directory = write_set({
        "0001_a.up.sql": "-- depends: 0002\nCREATE TABLE a (x INTEGER REFERENCES b(y));",
        "0002_b.up.sql": "CREATE TABLE b (y INTEGER PRIMARY KEY);",
    })
    plan = Migrator(db, directory, clock=clock).upgrade()
    assert plan.versions == ["0002", "0001"]
    rows = db.execute("SELECT version, name, checksum, applied_at, duration "
                      "FROM resilience_migrations ORDER BY rowid").fetchall()
    checksum = hashlib.sha256(b"CREATE TABLE b (y INTEGER PRIMARY KEY);").hexdigest()
    assert rows[0] == ("0002", "b", checksum, "2024-01-01T00:00:00.000+00:00", 0.0)
    assert [r[0] for r in rows] == ["0002", "0001"]
    assert _tables(db) == ["a", "b", "resilience_migrations"]


def test_status_lists_applied_and_pending(write_set: WriteSet, good_files: Files,
                                          db: sqlite3.Connection, clock: VirtualClock) -> None:
    migrator = Migrator(db, write_set(good_files), clock=clock)
    migrator.upgrade(to="0002")
    status = migrator.status()
    assert (status.current, status.applied, status.pending) == ("0002", ["0001", "0002"],
                                                                ["0003"])
    assert str(status) == (
        "current: 0002\n"
        "applied  0001_create_users  2024-01-01T00:00:00.000+00:00\n"
        "applied  0002_create_orders  2024-01-01T00:00:00.000+00:00\n"
        "pending  0003_audit")


def test_a_changed_applied_file_is_refused_as_drift(
        write_set: WriteSet, good_files: Files, db: sqlite3.Connection) -> None:
    directory = write_set(good_files)
    Migrator(db, directory).upgrade(to="0002")
    up = directory / "0001_create_users.up.sql"
    before = hashlib.sha256(up.read_bytes()).hexdigest()
    up.write_text(up.read_text() + "-- edited\n")
    after = hashlib.sha256(up.read_bytes()).hexdigest()
    migrator = Migrator(db, directory)
    assert [str(d) for d in migrator.verify()] == [
        f"0001_create_users.up.sql was applied with checksum {before[:12]}, it now has "
        f"{after[:12]}"]
    with pytest.raises(DriftError) as info:
        migrator.upgrade()
    assert str(info.value) == (
        f"refusing to run: 0001_create_users.up.sql was applied with checksum {before[:12]}, "
        f"it now has {after[:12]}. An applied migration is never changed: restore the file "
        "and put the change in a new migration.")
    assert migrator.status().current == "0002"  # 0003 was not applied
    assert "audit" not in _tables(db)
    with pytest.raises(DriftError):
        migrator.downgrade()


def test_a_vanished_applied_file_is_drift(write_set: WriteSet, good_files: Files,
                                          db: sqlite3.Connection) -> None:
    directory = write_set(good_files)
    Migrator(db, directory).upgrade()
    for suffix in ("up", "down"):
        (directory / f"0003_audit.{suffix}.sql").unlink()
    migrator = Migrator(db, directory)
    drift = migrator.verify()
    assert [str(d) for d in drift] == [
        f"0003_audit.up.sql was applied with checksum {drift[0].applied[:12]} and is no "
        "longer in the migrations directory"]
    assert [e.state for e in migrator.status().entries] == ["applied", "applied", "missing"]


def test_dry_run_prints_the_plan_and_changes_nothing(
        write_set: WriteSet, good_files: Files, db: sqlite3.Connection, tmp_path: Path) -> None:
    migrator = Migrator(db, write_set(good_files))
    migrator.upgrade(to="0001")
    path = tmp_path / "app.sqlite3"
    before = path.read_bytes()
    plan = migrator.upgrade(dry_run=True)
    assert plan.dry_run
    assert plan.versions == ["0002", "0003"]
    text = str(plan)
    assert text.startswith("-- upgrade plan: 2 migration(s)\n-- 0002_create_orders.up.sql "
                           "(transactional)\nBEGIN;\nCREATE TABLE orders (")
    assert "END;\nALTER TABLE users ADD COLUMN email TEXT;\n" in text
    assert text.endswith("UPDATE users SET email = name || '@example.com';\nCOMMIT;")
    assert str(migrator.downgrade(to=BASE, dry_run=True)) == (
        "-- downgrade plan: 1 migration(s)\n-- 0001_create_users.down.sql (transactional)\n"
        "BEGIN;\nDROP TABLE users;\nCOMMIT;")
    assert path.read_bytes() == before
    assert migrator.status().current == "0001"


def test_dry_run_on_a_new_database_creates_no_history_table(
        write_set: WriteSet, good_files: Files, db: sqlite3.Connection) -> None:
    Migrator(db, write_set(good_files)).upgrade(dry_run=True)
    assert _tables(db) == []


def test_a_statement_no_transaction_can_hold_is_flagged_before_anything_runs(
        write_set: WriteSet, good_files: Files, db: sqlite3.Connection) -> None:
    directory = write_set({**good_files, "0004_compact.up.sql": "DELETE FROM audit;\nVACUUM;"})
    with pytest.raises(NonTransactionalError) as info:
        Migrator(db, directory).upgrade()
    assert str(info.value) == (
        "0004_compact.up.sql statement 2 (VACUUM): VACUUM cannot run inside a transaction. "
        "Declare '-- transactional: false' at the top of the up file to run it statement "
        "by statement (then a crash can leave it half done).")
    assert _tables(db) == []  # not even 0001..0003 ran


def test_a_declared_non_transactional_migration_runs_statement_by_statement(
        write_set: WriteSet, good_files: Files, db: sqlite3.Connection) -> None:
    files = {**good_files,
             "0004_compact.up.sql": "-- transactional: false\nDELETE FROM audit;\nVACUUM;"}
    plan = Migrator(db, write_set(files)).upgrade()
    assert "-- 0004_compact.up.sql (NOT transactional)\nDELETE FROM audit;\nVACUUM;" in str(plan)
    assert not plan.steps[-1].transactional


@pytest.mark.parametrize("isolation_level", [None, "", "DEFERRED"])
def test_a_failing_migration_rolls_back_its_ddl(
        write_set: WriteSet, tmp_path: Path, isolation_level: str | None) -> None:
    directory = write_set({
        "0001_a.up.sql": "CREATE TABLE a (x INTEGER);",
        "0002_b.up.sql": "CREATE TABLE b (y INTEGER);\nCREATE INDEX bi ON b(y);\n"
                         "INSERT INTO nowhere VALUES (1);",
    })
    conn = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=isolation_level)
    migrator = Migrator(conn, directory)
    with pytest.raises(MigrationError) as info:
        migrator.upgrade()
    assert str(info.value) == ("0002_b.up.sql failed at statement 3: no such table: nowhere. "
                               "The migration was rolled back.")
    assert conn.isolation_level == isolation_level  # the caller's setting is restored
    conn.close()
    reopened = sqlite3.connect(tmp_path / "x.sqlite3")
    assert _tables(reopened) == ["a", "resilience_migrations"]
    assert reopened.execute("SELECT version FROM resilience_migrations").fetchall() == [
        ("0001",)]
    reopened.close()


def test_an_open_transaction_is_refused(write_set: WriteSet, good_files: Files,
                                        db: sqlite3.Connection) -> None:
    db.execute("BEGIN")
    with pytest.raises(ValueError) as info:
        Migrator(db, write_set(good_files)).upgrade()
    assert str(info.value) == (
        "connection has an open transaction; commit or roll it back before running "
        "migrations (each migration runs in its own transaction).")


def test_downgrade_steps_back_and_to_a_version(write_set: WriteSet, good_files: Files,
                                               db: sqlite3.Connection) -> None:
    migrator = Migrator(db, write_set(good_files))
    migrator.upgrade()
    assert migrator.downgrade().versions == ["0003"]
    assert migrator.status().current == "0002"
    migrator.upgrade()
    assert migrator.downgrade(to="0001").versions == ["0003", "0002"]
    assert migrator.downgrade(to=BASE).versions == ["0001"]
    assert _tables(db) == ["resilience_migrations"]
    assert migrator.downgrade().versions == []


def test_up_down_up_leaves_schema_and_rows_equal(write_set: WriteSet, good_files: Files,
                                                 tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "dbs")
    backend.create("app")
    conn = backend.connect("app")
    migrator = Migrator(conn, write_set(good_files))
    migrator.upgrade(to="0002")
    conn.execute("INSERT INTO orders (user_id, amount) VALUES (1, 250)")
    before = backend.dialect.snapshot(conn, ["resilience_migrations"])
    migrator.upgrade()
    conn.execute("INSERT INTO orders (user_id, amount) VALUES (1, 10)")  # fires the trigger
    up = backend.dialect.snapshot(conn, ["resilience_migrations"])
    migrator.downgrade()
    down = backend.dialect.snapshot(conn, ["resilience_migrations"])
    assert before.schema == down.schema
    assert before.lost_rows(down) == {}
    migrator.upgrade()
    again = backend.dialect.snapshot(conn, ["resilience_migrations"])
    assert again.schema == up.schema
    assert {t: len(r) for t, (_, r) in again.rows.items()} == {
        "audit": 0, "orders": 2, "users": 1}  # the audit row went with its table
    conn.close()


def test_a_migration_without_down_file_cannot_be_rolled_back(
        write_set: WriteSet, db: sqlite3.Connection) -> None:
    migrator = Migrator(db, write_set({"0001_a.up.sql": "CREATE TABLE a (x INTEGER);"}))
    migrator.upgrade()
    with pytest.raises(MigrationError) as info:
        migrator.downgrade()
    assert str(info.value) == ("cannot roll back 0001_a: no .down.sql file. Add "
                               "0001_a.down.sql with the statements that undo it.")


def test_a_pending_migration_before_an_applied_one_is_refused(
        write_set: WriteSet, db: sqlite3.Connection) -> None:
    directory = write_set({"0002_b.up.sql": "CREATE TABLE b (y INTEGER);"})
    Migrator(db, directory).upgrade()
    (directory / "0001_a.up.sql").write_text("CREATE TABLE a (x INTEGER);")
    with pytest.raises(MigrationError) as info:
        Migrator(db, directory).upgrade()
    assert str(info.value) == (
        "0001_a not applied but 0002_b, which comes after in the plan, is. Apply order is "
        "fixed: give the new migration a later version, or '-- depends:' on the applied one.")


def test_events_are_written_on_the_clock(write_set: WriteSet, good_files: Files,
                                         db: sqlite3.Connection, clock: VirtualClock,
                                         history: History) -> None:
    directory = write_set({**good_files, "0004_bad.up.sql": "INSERT INTO nowhere VALUES (1);"})
    migrator = Migrator(db, directory, clock=clock, name="app-db")
    clock.advance(5)
    with pytest.raises(MigrationError):
        migrator.upgrade()
    migrator.downgrade()
    assert history.kinds() == ["migration.applied"] * 3 + ["migration.failed",
                                                           "migration.rolled_back"]
    applied = history.select("migration.applied")[0]
    assert (applied.source, applied.time) == ("app-db", 5.0)
    assert dict(applied.attrs) == {
        "version": "0001", "name": "create_users", "checksum": migrator.migrations[0].checksum,
        "statements": 2, "transactional": True, "duration": 0.0}
    failed = history.select("migration.failed")[0].attrs
    assert (failed["version"], failed["direction"], failed["statement"],
            failed["rolled_back"]) == ("0004", "up", 1, True)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"table": "my table"},
     "table='my table' is not a plain SQL name. Pass letters, digits and underscores, such "
     "as 'resilience_migrations'."),
    ({"table": "t\n"},
     "table='t\\n' is not a plain SQL name. Pass letters, digits and underscores, such "
     "as 'resilience_migrations'."),
    ({"dialect": "oracle"},
     "dialect='oracle' is not a supported dialect. Pass one of postgresql, sqlite."),
    ({"name": ""}, "name='' is not a name. Pass a non-empty string."),
])
def test_bad_settings_raise_at_construction(write_set: WriteSet, good_files: Files,
                                            db: sqlite3.Connection, kwargs: dict[str, str],
                                            message: str) -> None:
    with pytest.raises(ValueError) as info:
        Migrator(db, write_set(good_files), **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_an_unknown_connection_or_set_is_refused(write_set: WriteSet, good_files: Files,
                                                 db: sqlite3.Connection) -> None:
    with pytest.raises(TypeError) as info:
        Migrator(object(), write_set(good_files))
    assert str(info.value) == ("cannot tell the database of a builtins.object connection; "
                               "pass dialect='sqlite' or dialect='postgresql'.")
    with pytest.raises(TypeError) as info:
        Migrator(db, 42)  # type: ignore[arg-type]
    assert str(info.value) == ("migrations=42 is not a migration set. Pass a MigrationSet or "
                               "the path of a migrations directory.")
    with pytest.raises(TypeError) as info:
        Migrator(db, write_set(good_files), table=None)  # type: ignore[arg-type]
    assert str(info.value) == ("table=None is not a plain SQL name. Pass letters, digits and "
                               "underscores, such as 'resilience_migrations'.")
