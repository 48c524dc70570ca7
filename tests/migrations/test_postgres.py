"""The PostgreSQL path against a real server (started by ``postgres_dsn``; skips without
PostgreSQL or psycopg): runner, crash explorer and alembic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience.migrations import (
    CrashExplorer,
    MigrationError,
    Migrator,
    NonTransactionalError,
    PostgresBackend,
)

WriteSet = Callable[..., Path]
PG_SET = {
    "0001_users.up.sql": "CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT NOT NULL);\n"
                         "INSERT INTO users (name) VALUES ('ada; lovelace');",
    "0001_users.down.sql": "DROP TABLE users;",
    "0002_email.up.sql": """ALTER TABLE users ADD COLUMN email TEXT;
CREATE FUNCTION lower_email() RETURNS trigger AS $$
BEGIN NEW.email := lower(NEW.email); RETURN NEW; END; $$ LANGUAGE plpgsql;
CREATE TRIGGER users_email BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION lower_email();
UPDATE users SET email = name || '@example.com';""",
    "0002_email.down.sql": "DROP TRIGGER users_email ON users;\nDROP FUNCTION lower_email();\n"
                           "ALTER TABLE users DROP COLUMN email;",
}


@pytest.fixture
def pg(postgres_dsn: str) -> Iterator[PostgresBackend]:
    backend = PostgresBackend(postgres_dsn, prefix="t_")
    backend.create("app")
    yield backend
    backend.drop("app")


def _tables(conn: Any) -> list[str]:
    return sorted(r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))


def test_a_failing_migration_rolls_back_its_ddl(pg: PostgresBackend,
                                                write_set: WriteSet) -> None:
    files = {**PG_SET, "0003_bad.up.sql": "CREATE TABLE b (y INT);\nINSERT INTO nowhere "
                                          "VALUES (1);"}
    conn = pg.connect("app")
    with pytest.raises(MigrationError) as info:
        Migrator(conn, write_set(files)).upgrade()
    assert str(info.value).startswith("0003_bad.up.sql failed at statement 2: relation "
                                      "\"nowhere\" does not exist")
    assert _tables(conn) == ["resilience_migrations", "users"]
    assert Migrator(conn, write_set(files)).status().current == "0002"
    conn.close()


def test_create_index_concurrently_is_flagged_then_runs_when_declared(
        pg: PostgresBackend, write_set: WriteSet) -> None:
    conn = pg.connect("app")
    files = {**PG_SET, "0003_index.up.sql": "CREATE INDEX CONCURRENTLY users_name ON users "
                                            "(name);"}
    with pytest.raises(NonTransactionalError) as info:
        Migrator(conn, write_set(files)).upgrade()
    assert "CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block" in str(
        info.value)
    files["0003_index.up.sql"] = "-- transactional: false\n" + files["0003_index.up.sql"]
    Migrator(conn, write_set(files)).upgrade()
    assert conn.execute("SELECT indexname FROM pg_indexes WHERE indexname = 'users_name'"
                        ).fetchall() == [("users_name",)]
    conn.close()


def test_a_correct_migration_is_crash_safe_on_postgres(pg: PostgresBackend,
                                                       write_set: WriteSet) -> None:
    # one migration only: each crash point costs a CREATE DATABASE ... TEMPLATE (~0.4 s)
    with CrashExplorer(write_set(PG_SET), backend=pg, kill_sample=1) as explorer:
        report = explorer.explore("0002")
    assert report.crash_safe, report.explain()
    assert [p.kind for p in report.points] == ["statement"] * 4 + ["record", "commit"]
    assert report.killed == 1


def test_a_non_transactional_migration_is_reported_on_postgres(
        pg: PostgresBackend, write_set: WriteSet) -> None:
    files = {**PG_SET, "0003_split.up.sql": "-- transactional: false\nCREATE TABLE a (x INT);"
                                            "\nCREATE INDEX CONCURRENTLY a_x ON a (x);",
             "0003_split.down.sql": "DROP TABLE a;"}
    with CrashExplorer(write_set(files), backend=pg, kill_sample=0,
                       round_trip=False) as explorer:
        report = explorer.explore("0003")
    assert not report.crash_safe
    assert str(report.findings[0]) == (
        "0003_split: crash before statement 2/2 of 0003_split.up.sql: CREATE INDEX "
        "CONCURRENTLY a_x ON a (x) => schema differs from version 0002's: table a is extra")


def test_alembic_revisions_are_crash_safe_on_postgres(pg: PostgresBackend) -> None:
    pytest.importorskip("alembic", reason="needs the 'migrations' extra")
    from pytest_resilience.migrations import AlembicSource

    ini = Path(__file__).parents[2] / "example_suites" / "alembic_app" / "alembic.ini"
    with CrashExplorer(AlembicSource(ini), backend=pg, kill_sample=0) as explorer:
        report = explorer.explore("0001")
    assert report.crash_safe, report.explain()
    assert [p.kind for p in report.points][-2:] == ["record", "commit"]
