"""``@pytest.mark.migrations`` and the ``migration`` fixture, under pytester."""

from __future__ import annotations

from pathlib import Path

import pytest


def _write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def test_one_test_per_migration_and_a_correct_set_passes(
        pytester: pytest.Pytester, good_files: dict[str, str]) -> None:
    _write(pytester.path / "migrations", good_files)
    pytester.makepyfile(test_db="""
        import pytest

        @pytest.mark.migrations("migrations", kill_sample=0)
        def test_migration(migration):
            report = migration.check()
            assert report.version == migration.version
    """)
    result = pytester.runpytest("-p", "resilience", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*test_migration?0001_create_users? PASSED*",
        "*test_migration?0002_create_orders? PASSED*",
        "*test_migration?0003_audit? PASSED*",
        "migration crash points: 14",
    ])


def test_a_non_atomic_migration_fails_naming_the_statement(
        pytester: pytest.Pytester, rebuild_files: dict[str, str]) -> None:
    _write(pytester.path / "db" / "migrations", rebuild_files)
    pytester.makepyfile(**{"db/test_db": """
        import pytest

        @pytest.mark.migrations("migrations", kill_sample=0)
        def test_migration(migration):
            migration.check()
    """})
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*0004_rebuild_users (declared non-transactional): NOT crash-safe; 5 crash points*",
        "*crash before statement 4/4 of 0004_rebuild_users.up.sql: ALTER TABLE users_new "
        "RENAME TO users => *rows lost: users: 7*",
        "FAILED db/test_db.py::test_migration[[]0004_rebuild_users[]]*",
    ])


def test_the_ini_key_names_the_set(pytester: pytest.Pytester,
                                   good_files: dict[str, str]) -> None:
    _write(pytester.path / "schema", good_files)
    pytester.makeini("[pytest]\naddopts = -p resilience -p no:cacheprovider\n"
                     "resilience_migrations = schema\n")
    pytester.makepyfile(**{"tests/test_db": """
        import pytest

        @pytest.mark.migrations(round_trip=False, kill_sample=0)
        def test_migration(migration):
            assert migration.report.crash_safe
    """})
    pytester.runpytest().assert_outcomes(passed=3)


@pytest.mark.parametrize(("marker", "message"), [
    ("@pytest.mark.migrations('migrations', kills=1)",
     "@pytest.mark.migrations got keyword(s) ['kills']. Pass one path and keywords "
     "from ['seed', 'kill_sample', 'kill_seed', 'round_trip', 'table', 'section', "
     "'options']."),
    ("@pytest.mark.migrations()",
     "@pytest.mark.migrations needs a path (a migrations directory or an "
     "alembic.ini), or the ini key resilience_migrations."),
])
def test_marker_misuse_is_a_collection_error(pytester: pytest.Pytester, good_files: dict[str, str],
                                        marker: str, message: str) -> None:
    _write(pytester.path / "migrations", good_files)
    pytester.makepyfile(test_db=f"""
        import pytest

        {marker}
        def test_migration(migration):
            pass
    """)
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


def test_the_test_must_take_the_migration_argument(pytester: pytest.Pytester,
                                                   good_files: dict[str, str]) -> None:
    _write(pytester.path / "migrations", good_files)
    pytester.makepyfile(test_db="""
        import pytest

        @pytest.mark.migrations("migrations")
        def test_migration():
            pass
    """)
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "test_db.py::test_migration: a @pytest.mark.migrations test takes the "
        "`migration` argument (one MigrationCase per migration)."])


def test_a_broken_set_is_a_collection_error(pytester: pytest.Pytester) -> None:
    _write(pytester.path / "migrations", {"0001_a.up.sql": "-- depends: 0002\nSELECT 1;",
                                          "0002_b.up.sql": "-- depends: 0001\nSELECT 1;"})
    pytester.makepyfile(test_db="""
        import pytest

        @pytest.mark.migrations("migrations")
        def test_migration(migration):
            pass
    """)
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*DependencyError: dependency cycle: 0001_a -> 0002_b -> "
                                 "0001_a.*"])


def test_the_fixture_without_the_marker_fails_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_db="""
        def test_migration(migration):
            pass
    """)
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*The `migration` fixture needs @pytest.mark.migrations"
                                 "(path) on the test.*"])
