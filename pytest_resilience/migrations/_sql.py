"""Splitting SQL scripts into statements, and spotting statements no transaction can hold.

The splitter tracks quotes, comments and PostgreSQL dollar quotes itself and asks
``sqlite3.complete_statement`` whether a ``;`` ends the statement, which keeps the ``;``
inside a ``CREATE TRIGGER ... BEGIN ... END;`` body in one statement.
"""

from __future__ import annotations

import functools
import re
import sqlite3

from pytest_resilience import validate

__all__ = ["NON_TRANSACTIONAL", "non_transactional_reason", "reason_for", "split_statements",
           "strip_comments"]

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_CLOSERS = {"'": "'", '"': '"', "`": "`", "[": "]"}


def _scan(sql: str) -> tuple[list[int], str]:
    """Positions of ``;`` outside quotes and comments, and ``sql`` with every dollar-quoted
    body blanked (so ``sqlite3.complete_statement`` can judge what is left)."""
    semis: list[int] = []
    masked = list(sql)
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in _CLOSERS:
            closer = _CLOSERS[c]
            j = i + 1
            while j < n:
                if sql[j] == closer:
                    if closer in "'\"`" and sql.startswith(closer * 2, j):
                        j += 2  # a doubled quote stays inside the literal
                        continue
                    break
                j += 1
            i = j + 1
        elif c == "$" and (match := _DOLLAR_TAG.match(sql, i)) and (
            i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")
        ):
            tag = match.group(0)
            end = sql.find(tag, match.end())
            stop = n if end < 0 else end + len(tag)
            masked[i:stop] = "''" + " " * (stop - i - 2)
            i = stop
        else:
            if c == ";":
                semis.append(i)
            i += 1
    return semis, "".join(masked)


def strip_comments(sql: str) -> str:
    """``sql`` without ``--`` and ``/* */`` comments (quotes kept), whitespace collapsed."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            out.append(" ")
        elif c == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif c in _CLOSERS:
            closer = _CLOSERS[c]
            j = i + 1
            while j < n and not (sql[j] == closer and not sql.startswith(closer * 2, j)):
                j += 2 if sql.startswith(closer * 2, j) and closer in "'\"`" else 1
            out.append(sql[i : j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return " ".join("".join(out).split())


def split_statements(sql: str) -> list[str]:
    """The statements of a script, in order, each stripped and without its final ``;``.

    Handles ``;`` in string literals, quoted names, comments, dollar-quoted bodies and
    trigger bodies; a part holding only comments is dropped.
    """
    return list(_split(validate.text(sql, "sql", empty=True, what="SQL text")))


@functools.lru_cache(maxsize=1024)
def _split(sql: str) -> tuple[str, ...]:
    semis, masked = _scan(sql)
    statements: list[str] = []
    start = 0
    for pos in semis:
        piece = masked[start : pos + 1]
        if _in_trigger_body(piece) and not sqlite3.complete_statement(piece):
            continue  # a ';' inside a trigger's BEGIN ... END body
        _keep(statements, sql[start:pos])
        start = pos + 1
    _keep(statements, sql[start:])
    return tuple(statements)


def _in_trigger_body(piece: str) -> bool:
    """Whether ``piece`` opens a SQLite-style ``CREATE TRIGGER ... BEGIN`` body (a
    PostgreSQL trigger, ``... EXECUTE FUNCTION f();``, has none)."""
    text = strip_comments(piece)
    return bool(_TRIGGER.match(text) and _BEGIN.search(text))


def _keep(statements: list[str], text: str) -> None:
    text = text.strip()
    while text.startswith(("--", "/*")):  # a leading comment belongs to no statement
        end = text.find("\n") if text.startswith("--") else text.find("*/") + 1
        text = "" if end <= 0 else text[end + 1 :].lstrip()
    if text:
        statements.append(text)


#: Statements that cannot run inside a transaction (or are silently ignored there), by
#: dialect, with the reason the runner prints.
NON_TRANSACTIONAL: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {
    "sqlite": (
        (re.compile(r"^VACUUM\b", re.I), "VACUUM cannot run inside a transaction"),
        (re.compile(r"^PRAGMA\s+(\w+\.)?journal_mode\s*=", re.I),
         "PRAGMA journal_mode cannot change inside a transaction"),
        (re.compile(r"^PRAGMA\s+foreign_keys\s*=", re.I),
         "PRAGMA foreign_keys is a no-op inside a transaction"),
        (re.compile(r"^(ATTACH|DETACH)\b", re.I),
         "ATTACH/DETACH cannot run inside a transaction"),
    ),
    "postgresql": (
        (re.compile(r"^(CREATE|DROP)\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\b", re.I),
         "CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block"),
        (re.compile(r"^REINDEX\b.*\bCONCURRENTLY\b", re.I),
         "REINDEX CONCURRENTLY cannot run inside a transaction block"),
        (re.compile(r"^ALTER\s+TYPE\b.*\bADD\s+VALUE\b", re.I),
         "a value added by ALTER TYPE ... ADD VALUE cannot be used in the same transaction"),
        (re.compile(r"^VACUUM\b", re.I), "VACUUM cannot run inside a transaction block"),
        (re.compile(r"^(CREATE|DROP)\s+(DATABASE|TABLESPACE)\b", re.I),
         "CREATE/DROP DATABASE or TABLESPACE cannot run inside a transaction block"),
        (re.compile(r"^ALTER\s+SYSTEM\b", re.I),
         "ALTER SYSTEM cannot run inside a transaction block"),
    ),
}
_CONTROL = re.compile(r"^(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE|START\s+TRANSACTION)\b",
                      re.I)
_TRIGGER = re.compile(r"^CREATE\s+(TEMP\s+|TEMPORARY\s+)?TRIGGER\b", re.I)
_BEGIN = re.compile(r"\bBEGIN\b", re.I)


def non_transactional_reason(statement: str, dialect: str) -> str | None:
    """Why ``statement`` cannot run inside the migration's transaction, or ``None``."""
    return reason_for(validate.text(statement, "statement", empty=True, what="a statement"),
                      validate.text(dialect, "dialect", what="a dialect name"))


@functools.lru_cache(maxsize=4096)
def reason_for(statement: str, dialect: str) -> str | None:
    """``non_transactional_reason`` without the checks (the runner's, per statement)."""
    text = strip_comments(statement)
    if _CONTROL.match(text) and not _TRIGGER.match(text):
        return "a migration must not control the transaction itself (BEGIN/COMMIT/ROLLBACK)"
    for pattern, reason in NON_TRANSACTIONAL.get(dialect, ()):
        if pattern.match(text):
            return reason
    return None
