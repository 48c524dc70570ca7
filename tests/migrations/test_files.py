"""Parsing and validating a migrations directory: names, headers, checksums, order."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_resilience.migrations import (
    DependencyError,
    Migration,
    MigrationError,
    MigrationSet,
    PostgresBackend,
    SQLiteBackend,
    load_migrations,
    non_transactional_reason,
    open_source,
    split_statements,
)

WriteSet = Callable[..., Path]


def test_a_directory_parses_into_ordered_migrations(write_set: WriteSet,
                                                    good_files: dict[str, str]) -> None:
    migrations = load_migrations(write_set(good_files))
    assert [m.label for m in migrations] == ["0001_create_users", "0002_create_orders",
                                             "0003_audit"]
    audit = migrations.get("0003")
    assert audit.depends == ("0001", "0002")
    assert audit.transactional
    assert len(audit.up_statements) == 4
    assert audit.checksum == hashlib.sha256(good_files["0003_audit.up.sql"].encode()).hexdigest()


def test_dependencies_reorder_the_versions(write_set: WriteSet) -> None:
    directory = write_set({
        "0001_a.up.sql": "-- depends: 0003\nSELECT 1;",
        "0002_b.up.sql": "SELECT 2;",
        "0003_c.up.sql": "-- depends: 0002\nSELECT 3;",
    })
    assert load_migrations(directory).versions == ["0002", "0003", "0001"]


def test_a_cycle_is_refused_naming_it(write_set: WriteSet) -> None:
    directory = write_set({
        "0001_a.up.sql": "-- depends: 0003\nSELECT 1;",
        "0002_b.up.sql": "-- depends: 0001\nSELECT 2;",
        "0003_c.up.sql": "-- depends: 0002\nSELECT 3;",
        "0004_d.up.sql": "SELECT 4;",
    })
    with pytest.raises(DependencyError) as info:
        load_migrations(directory)
    assert str(info.value) == "dependency cycle: 0001_a -> 0003_c -> 0002_b -> 0001_a."


def test_an_unknown_dependency_is_refused(write_set: WriteSet) -> None:
    directory = write_set({"0001_a.up.sql": "-- depends: 0009\nSELECT 1;"})
    with pytest.raises(DependencyError) as info:
        load_migrations(directory)
    assert str(info.value) == "0001_a depends on 0009, which is not in the set. Known " \
                              "versions: ['0001']."


@pytest.mark.parametrize(("files", "message"), [
    ({"0001_a.up.sql": "SELECT 1;", "0001_b.up.sql": "SELECT 2;"},
     "version 0001 is used twice: 0001_a.up.sql and 0001_b.up.sql."),
    ({"create_users.sql": "SELECT 1;"},
     "create_users.sql: a migration file is named <digits>_<name>.up.sql or "
     "<digits>_<name>.down.sql (e.g. 0001_create_users.up.sql)."),
    ({"0002_b.down.sql": "SELECT 1;"}, "0002_b.down.sql has no 0002_b.up.sql beside it."),
    ({"0001_a.up.sql": "SELECT 1;", "0001_b.down.sql": "SELECT 1;"},
     "0001_b.down.sql does not match 0001_a.up.sql: the names differ."),
    ({"0001_a.up.sql": "-- transactional: maybe\nSELECT 1;"},
     "0001_a.up.sql: '-- transactional: maybe' is not true or false."),
    ({"0001_a.up.sql": "-- depend: 0002\nSELECT 1;"},
     "0001_a.up.sql: unknown header '-- depend:'; did you mean '-- depends:'?"),
    ({"0001_a.up.sql": "-- depends: v2\nSELECT 1;"},
     "0001_a.up.sql: '-- depends: v2' is not a version (digits, such as 0003)."),
])
def test_malformed_sets_are_refused_with_the_fix(write_set: WriteSet, files: dict[str, str],
                                                 message: str) -> None:
    with pytest.raises(MigrationError) as info:
        load_migrations(write_set(files))
    assert str(info.value) == message


def test_headers_only_count_before_the_first_statement(write_set: WriteSet) -> None:
    directory = write_set({"0001_a.up.sql": "-- Note: plain comment\n-- transactional: "
                                            "false\nSELECT 1;\n-- depends: 0005\n"})
    migration = load_migrations(directory).get("0001")
    assert migration.depends == ()
    assert not migration.transactional


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(MigrationError) as info:
        load_migrations(tmp_path / "nope")
    assert str(info.value) == f"migrations directory {str(tmp_path / 'nope')!r} does not exist."


@given(st.dictionaries(st.integers(1, 30), st.sets(st.integers(1, 30), max_size=3),
                       min_size=1, max_size=12))
def test_any_acyclic_graph_orders_each_version_after_its_dependencies(
        graph: dict[int, set[int]]) -> None:
    # keep only edges to smaller known versions: acyclic by construction
    deps = {v: {d for d in ds if d in graph and d < v} for v, ds in graph.items()}
    migrations = MigrationSet([Migration(f"{v:04d}", f"m{v}", "SELECT 1;", None,
                                         tuple(f"{d:04d}" for d in sorted(ds)))
                               for v, ds in deps.items()])
    order = migrations.versions
    assert sorted(order) == sorted(f"{v:04d}" for v in graph)
    for v, ds in deps.items():
        for d in ds:
            assert order.index(f"{d:04d}") < order.index(f"{v:04d}")


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: split_statements(None), TypeError,
     "sql=None is not SQL text. Pass a string."),
    (lambda: non_transactional_reason("VACUUM", None), TypeError,
     "dialect=None is not a dialect name. Pass a non-empty string."),
    (lambda: load_migrations(None), TypeError,
     "directory=None is not a path. Pass a path: a non-empty str or a pathlib.Path."),
    (lambda: MigrationSet("0001"), TypeError,
     "migrations='0001' is not a list of migrations. Pass a list of Migration objects."),
    (lambda: SQLiteBackend(b"dbs"), TypeError,
     "directory=b'dbs' is not a path. Pass a path: a non-empty str or a pathlib.Path."),
    (lambda: PostgresBackend("host=127.0.0.1", prefix=""), ValueError,
     "prefix='' is not a database name. Pass lower-case letters, digits and '_'."),
    (lambda: open_source(None), TypeError,
     "path=None is not a migration source. Pass a migrations directory or an alembic .ini "
     "file."),
])
def test_wrong_arguments_are_named(call: Callable[[], object], error: type[Exception],
                                   message: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


def test_a_malformed_dsn_is_named() -> None:
    pytest.importorskip("psycopg", reason="PostgresBackend parses the DSN with psycopg")
    with pytest.raises(ValueError) as info:
        PostgresBackend("30")
    assert str(info.value) == (
        "dsn='30' is not a libpq connection string (missing \"=\" after \"30\" in connection "
        "info string). Pass a string such as 'host=127.0.0.1 port=5432 user=postgres "
        "dbname=postgres'.")
