"""Statement splitting and the statements no transaction can hold."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_resilience.migrations import non_transactional_reason, split_statements


def test_semicolons_in_literals_comments_and_quoted_names_do_not_split() -> None:
    sql = """-- header; not a statement
CREATE TABLE "a;b" (x TEXT DEFAULT ';', [c;d] INTEGER);  -- trailing; comment
/* block; comment */ INSERT INTO "a;b" (x) VALUES ('it''s; here');
SELECT `e;f` FROM "a;b"
"""
    assert split_statements(sql) == [
        """CREATE TABLE "a;b" (x TEXT DEFAULT ';', [c;d] INTEGER)""",
        """INSERT INTO "a;b" (x) VALUES ('it''s; here')""",
        """SELECT `e;f` FROM "a;b\"""",
    ]


def test_a_trigger_body_stays_one_statement() -> None:
    sql = """CREATE TRIGGER t AFTER INSERT ON a BEGIN
  UPDATE a SET x = 'y;' WHERE x = ';';
  DELETE FROM a WHERE 0;
END;
SELECT 1;"""
    first, second = split_statements(sql)
    assert first.startswith("CREATE TRIGGER")
    assert first.endswith("END")
    assert second == "SELECT 1"
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE a (x TEXT)")
    conn.execute(first)  # SQLite accepts the piece as one statement
    conn.execute("INSERT INTO a VALUES (';')")
    assert conn.execute("SELECT x FROM a").fetchall() == [("y;",)]


def test_postgres_dollar_quoted_bodies_stay_whole() -> None:
    sql = ("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
           "CREATE FUNCTION g() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ "
           "LANGUAGE plpgsql;\nSELECT '$$;'")
    assert split_statements(sql) == [
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
        "CREATE FUNCTION g() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE "
        "plpgsql",
        "SELECT '$$;'",
    ]


def test_a_postgres_trigger_without_body_ends_at_its_semicolon() -> None:
    sql = ("CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION f();\n"
           "UPDATE users SET x = 1;")
    assert split_statements(sql) == [
        "CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION f()",
        "UPDATE users SET x = 1"]


def test_comment_only_parts_are_dropped() -> None:
    assert split_statements("-- a\n/* b */ ;; -- c\n") == []
    assert split_statements("/* unterminated") == []


_literal = st.text(alphabet=st.sampled_from("ab;'\"-/*$ \n"), max_size=12).map(
    lambda s: "'" + s.replace("'", "''") + "'")


@given(st.lists(_literal, min_size=1, max_size=5))
def test_literals_holding_anything_split_where_sqlite_does(literals: list[str]) -> None:
    statements = [f"SELECT {lit}" for lit in literals]
    got = split_statements(";\n".join(statements) + ";")
    assert got == statements
    conn = sqlite3.connect(":memory:")
    assert [conn.execute(s).fetchone()[0] for s in got] == [
        lit[1:-1].replace("''", "'") for lit in literals]


@pytest.mark.parametrize(("dialect", "statement", "reason"), [
    ("sqlite", "vacuum", "VACUUM cannot run inside a transaction"),
    ("sqlite", "-- note\nPRAGMA journal_mode = WAL",
     "PRAGMA journal_mode cannot change inside a transaction"),
    ("sqlite", "PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys is a no-op inside a transaction"),
    ("sqlite", "COMMIT",
     "a migration must not control the transaction itself (BEGIN/COMMIT/ROLLBACK)"),
    ("postgresql", "CREATE INDEX CONCURRENTLY i ON t (x)",
     "CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block"),
    ("postgresql", "ALTER TYPE mood ADD VALUE 'meh'",
     "a value added by ALTER TYPE ... ADD VALUE cannot be used in the same transaction"),
])
def test_statements_no_transaction_can_hold_are_named(dialect: str, statement: str,
                                                      reason: str) -> None:
    assert non_transactional_reason(statement, dialect) == reason


@pytest.mark.parametrize("statement", [
    "CREATE INDEX i ON t (x)", "PRAGMA table_info(t)", "SELECT 'VACUUM'",
    "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END",
])
def test_ordinary_statements_pass(statement: str) -> None:
    assert non_transactional_reason(statement, "sqlite") is None
    assert non_transactional_reason(statement, "postgresql") is None
