"""The crash-point explorer on real SQLite files: a correct set passes every point, a
non-atomic migration is reported at the exact statement, by exception and by SIGKILL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience import History, VirtualClock
from pytest_resilience.migrations import (
    CrashExplorer,
    Migration,
    MigrationCase,
    MigrationSet,
    NonTransactionalError,
    SQLiteBackend,
    auto_seed,
    explore_crashes,
)

WriteSet = Callable[..., Path]
Files = dict[str, str]


def test_a_correct_set_passes_every_crash_point(write_set: WriteSet, good_files: Files,
                                                clock: VirtualClock, history: History) -> None:
    report = explore_crashes(write_set(good_files), kill_sample=1, clock=clock)
    assert report.crash_safe, report.explain()
    # each migration's statements, its history row and its COMMIT
    assert [len(m.points) for m in report.migrations] == [2 + 2, 2 + 2, 4 + 2]
    assert [m.killed for m in report.migrations] == [1, 1, 1]
    assert [p.kind for p in report.migrations[2].points] == ["statement"] * 4 + ["record",
                                                                               "commit"]
    crashes = history.select("migration.crash_point")
    assert len(crashes) == 14 + 3
    assert {e.attrs["outcome"] for e in crashes} == {"old"}  # rolled back, every time
    assert {e.attrs["mode"] for e in crashes} == {"exception", "sigkill"}
    assert [e.attrs["outcome"] for e in history.select("migration.round_trip")] == ["ok"] * 3
    assert report.explain().splitlines()[0] == "3 migrations, 14 crash points: all crash-safe"


def test_a_non_transactional_rebuild_is_reported_at_the_exact_statements(
        write_set: WriteSet, rebuild_files: Files) -> None:
    report = explore_crashes(write_set(rebuild_files), kill_sample=0)
    assert report.unsafe == ["0004_rebuild_users"]
    where = "of 0004_rebuild_users.up.sql"
    assert [str(f) for f in report.findings] == [
        f"0004_rebuild_users: crash before statement 2/4 {where}: INSERT INTO users_new "
        "SELECT id, name, email FROM users => schema differs from version 0003's: table "
        "users_new is extra",
        f"0004_rebuild_users: crash before statement 3/4 {where}: DROP TABLE users => schema "
        "differs from version 0003's: table users_new is extra; rows that version 0003 does "
        "not hold: users_new: 7",
        f"0004_rebuild_users: crash before statement 4/4 {where}: ALTER TABLE users_new "
        "RENAME TO users => schema differs from version 0003's: table users is missing, "
        "table users_new is extra; rows lost: users: 7; rows that version 0003 does not "
        "hold: users_new: 7",
    ]
    unsafe = report.migrations[-1]
    assert not unsafe.transactional
    assert unsafe.explain().splitlines()[0] == (
        "0004_rebuild_users (declared non-transactional): NOT crash-safe; 5 crash points, "
        "5 crashed by exception, 0 by SIGKILL")


def test_a_sigkilled_child_finds_the_same_damage(write_set: WriteSet,
                                                 rebuild_files: Files) -> None:
    with CrashExplorer(write_set(rebuild_files), kill_sample=5, round_trip=False) as explorer:
        report = explorer.explore("0004")
    killed = [f for f in report.findings if f.mode == "sigkill"]
    crashed = [f for f in report.findings if f.mode == "exception"]
    assert report.killed == 5
    assert [f.index for f in killed] == [f.index for f in crashed] == [1, 2, 3]
    assert [f.problems for f in killed] == [f.problems for f in crashed]
    assert str(killed[-1]).startswith(
        "0004_rebuild_users: SIGKILL before statement 4/4 of 0004_rebuild_users.up.sql")


def test_two_migrations_in_one_file_split_by_a_commit_are_refused(
        write_set: WriteSet, good_files: Files) -> None:
    files = {**good_files, "0004_two.up.sql": "CREATE TABLE a (x INTEGER);\nCOMMIT;\n"
                                              "BEGIN;\nCREATE TABLE b (y INTEGER);"}
    with pytest.raises(NonTransactionalError) as info:
        explore_crashes(write_set(files))
    assert str(info.value) == (
        "0004_two.up.sql statement 2 (COMMIT): a migration must not control the transaction "
        "itself (BEGIN/COMMIT/ROLLBACK). Declare '-- transactional: false' at the top of the "
        "up file to run it statement by statement (then a crash can leave it half done).")


def test_declared_non_transactional_two_step_file_is_reported(write_set: WriteSet,
                                                              good_files: Files) -> None:
    files = {**good_files, "0004_two.up.sql": "-- transactional: false\nCREATE TABLE a "
                                              "(x INTEGER);\nCREATE TABLE b (y INTEGER);",
             "0004_two.down.sql": "DROP TABLE b;\nDROP TABLE a;"}
    report = explore_crashes(write_set(files), kill_sample=0)
    assert [(f.index, f.point.number if f.point else None) for f in report.findings] == [
        (1, 2), (2, 0)]
    assert str(report.findings[0]) == (
        "0004_two: crash before statement 2/2 of 0004_two.up.sql: CREATE TABLE b (y INTEGER) "
        "=> schema differs from version 0003's: table a is extra")
    assert str(report.findings[1]) == (
        "0004_two: crash before the history row of 0004_two.up.sql: INSERT INTO "
        "\"resilience_migrations\" (version, name, checksum, applied_at, dur... => schema "
        "differs from version 0003's: table a is extra, table b is extra")


def test_a_down_that_does_not_undo_its_up_fails_the_round_trip(
        write_set: WriteSet, good_files: Files) -> None:
    files = {**good_files, "0003_audit.down.sql": "DROP TRIGGER orders_audit;\n"
                                                  "DROP TABLE audit;\n"}
    report = explore_crashes(write_set(files), kill_sample=0)
    assert report.unsafe == ["0003_audit"]
    assert [str(f) for f in report.findings] == [
        "0003_audit: up -> down -> up => after down, schema differs from version 0002's: + "
        "table users: column 2 email TEXT null default=None pk=0; up again failed: "
        "0003_audit.up.sql failed at statement 3: duplicate column name: email. The "
        "migration was rolled back."]


def test_seed_is_called_at_every_version_and_its_rows_are_checked(
        write_set: WriteSet, rebuild_files: Files) -> None:
    calls: list[str | None] = []

    def seed(conn: Any, version: str | None) -> None:
        calls.append(version)
        if version == "0003":
            conn.execute("INSERT INTO users (name, email) VALUES ('grace', 'g@x')")

    report = explore_crashes(write_set(rebuild_files), seed=seed, kill_sample=0,
                             round_trip=False)
    assert calls == [None, "0001", "0002", "0003", "0004"]
    assert "rows lost: users: 2" in str(report.findings[-1])  # ada and grace


def test_an_unseeded_run_still_sees_the_migrations_own_rows(write_set: WriteSet,
                                                            rebuild_files: Files) -> None:
    report = explore_crashes(write_set(rebuild_files), seed=False, kill_sample=0,
                             round_trip=False)
    assert "rows lost: users: 1" in str(report.findings[-1])


def test_explore_builds_baselines_once_and_explores_any_order(
        write_set: WriteSet, good_files: Files, tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "dbs")
    with CrashExplorer(write_set(good_files), backend=backend, kill_sample=0) as explorer:
        assert explorer.explore("0003").crash_safe
        assert explorer.explore("0001").crash_safe
        assert sorted(p.name for p in (tmp_path / "dbs").iterdir()) == [
            f"base_{i}.sqlite3" for i in range(4)]
        base = sqlite3.connect(backend.path("base_3"))
        assert base.execute("SELECT count(*) FROM users").fetchone() == (7,)
        base.close()
    assert list((tmp_path / "dbs").iterdir()) == []


def test_a_set_built_in_code_is_explored_without_sigkill() -> None:
    migrations = MigrationSet([Migration("0001", "t", "CREATE TABLE t (x INTEGER);",
                                         "DROP TABLE t;")])
    report = explore_crashes(migrations, kill_sample=2)
    assert report.crash_safe
    assert report.migrations[0].notes == (
        "no SIGKILL run: the migrations were not loaded from a directory",)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"kill_sample": -1}, ValueError,
     "kill_sample=-1 is not a number of crash points. Pass an integer >= 0."),
    ({"kill_sample": None}, TypeError,
     "kill_sample=None is not a number of crash points. Pass an integer >= 0."),
    ({"seed": "rows"}, TypeError, "seed='rows' is not a seeding choice. Pass True (generated "
                                  "rows), False (none) or a function seed(conn, version)."),
    ({"round_trip": 1}, TypeError, "round_trip=1 is not a switch. Pass True or False."),
    ({"workdir": None, "backend": 42}, TypeError,
     "backend=42 is not a database backend. Pass a SQLiteBackend or "
     "PostgresBackend instance."),
])
def test_bad_settings_raise_at_construction(write_set: WriteSet, good_files: Files,
                                            kwargs: dict[str, Any], error: type[Exception],
                                            message: str) -> None:
    with pytest.raises(error) as info:
        CrashExplorer(write_set(good_files), **kwargs)
    assert str(info.value) == message


def test_an_unknown_version_is_named(write_set: WriteSet, good_files: Files) -> None:
    with CrashExplorer(write_set(good_files)) as explorer, pytest.raises(ValueError) as info:
        explorer.explore("0009")
    assert str(info.value) == ("version='0009' is not a migration of this set; known: "
                               "['0001', '0002', '0003'].")


def test_a_wrong_migrations_argument_is_named() -> None:
    with pytest.raises(TypeError) as info:
        CrashExplorer(None)  # type: ignore[arg-type]
    assert str(info.value) == ("migrations=None is not migrations. Pass a migrations "
                               "directory, a MigrationSet or a Source such as AlembicSource.")


def test_a_case_names_a_wrong_explorer_or_version(write_set: WriteSet,
                                                  good_files: Files) -> None:
    with pytest.raises(TypeError) as info:
        MigrationCase(None, "0001")  # type: ignore[arg-type]
    assert str(info.value) == "explorer=None is not a crash explorer. Pass a CrashExplorer."
    with CrashExplorer(write_set(good_files)) as explorer, pytest.raises(ValueError) as info:
        MigrationCase(explorer, "0009")
    assert str(info.value) == ("version='0009' is not a migration version. Pass one of "
                               "['0001', '0002', '0003'].")


def test_auto_seed_names_a_wrong_setting(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path)
    conn = sqlite3.connect(":memory:")
    with pytest.raises(TypeError) as info:
        auto_seed(conn, backend, exclude="t")
    assert str(info.value) == "exclude='t' is not a list of names. Pass a list of strings."
    with pytest.raises(TypeError) as info:
        auto_seed(conn, None)  # type: ignore[arg-type]
    conn.close()
    assert str(info.value) == ("backend=None is not a database backend. Pass a SQLiteBackend "
                               "or PostgresBackend instance.")
