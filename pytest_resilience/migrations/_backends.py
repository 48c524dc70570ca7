"""Where the crash explorer keeps its databases: SQLite files in a directory, or databases
on a PostgreSQL server copied with ``CREATE DATABASE ... TEMPLATE``."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from pytest_resilience import validate
from pytest_resilience.migrations._dialects import Dialect, dialect_for, execute, quote

__all__ = ["Backend", "PostgresBackend", "SQLiteBackend", "backend_from_spec"]

_NAME = re.compile(r"[a-z0-9_]+")
_DSN = "a string such as 'host=127.0.0.1 port=5432 user=postgres dbname=postgres'"


class Backend(Protocol):
    """Named databases the explorer creates, copies, opens and drops."""

    dialect: Dialect

    def create(self, db: str) -> None:
        """Make an empty database ``db``."""
        ...

    def copy(self, src: str, dst: str) -> None:
        """Make ``dst`` a copy of the (closed) database ``src``."""
        ...

    def drop(self, db: str) -> None:
        """Remove ``db`` if it exists."""
        ...

    def connect(self, db: str) -> Any:
        """A DB-API connection to ``db`` in autocommit mode."""
        ...

    def url(self, db: str) -> str:
        """A SQLAlchemy URL of ``db``."""
        ...

    def spec(self) -> dict[str, str]:
        """JSON-able arguments that rebuild this backend in a child process."""
        ...


def _check(db: str, name: str = "db") -> str:
    accepted = "lower-case letters, digits and '_'"
    validate.text(db, name, what="a database name", accepted=accepted)
    validate.check(_NAME.fullmatch(db) is not None, name, db, what="a database name",
                   accepted=accepted)
    return db


class SQLiteBackend:
    """One SQLite file per database, ``<directory>/<db>.sqlite3``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = validate.path(directory, "directory")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dialect: Dialect = dialect_for(None, "sqlite")

    def path(self, db: str) -> Path:
        """The file of database ``db``."""
        return self.directory / f"{_check(db)}.sqlite3"

    def create(self, db: str) -> None:
        self.drop(db)
        sqlite3.connect(self.path(db)).close()

    def copy(self, src: str, dst: str) -> None:
        self.drop(dst)
        shutil.copyfile(self.path(src), self.path(dst))

    def drop(self, db: str) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self.path(db)}{suffix}").unlink(missing_ok=True)

    def connect(self, db: str) -> sqlite3.Connection:
        return sqlite3.connect(self.path(db), isolation_level=None)

    def url(self, db: str) -> str:
        return f"sqlite:///{self.path(db)}"

    def spec(self) -> dict[str, str]:
        return {"kind": "sqlite", "directory": str(self.directory)}


class PostgresBackend:
    """Databases ``<prefix><db>`` on a PostgreSQL server, through psycopg (3).

    ``dsn`` is a libpq connection string for a role that may create databases
    (``"host=127.0.0.1 port=5432 user=postgres dbname=postgres"``).
    """

    def __init__(self, dsn: str, *, prefix: str = "resilience_") -> None:
        self.dsn = validate.text(dsn, "dsn", empty=True, what="a libpq connection string",
                                 accepted=_DSN)
        self.prefix = _check(prefix, "prefix")
        import psycopg

        try:
            params = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            raise ValueError(f"dsn={validate.show(dsn)} is not a libpq connection string "
                             f"({str(exc).strip()}). Pass {_DSN}.") from None
        self._params = {k: str(v) for k, v in params.items() if v is not None}
        self.dialect: Dialect = dialect_for(None, "postgresql")

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            execute(conn, sql)

    def _name(self, db: str) -> str:
        return self.prefix + _check(db)

    def create(self, db: str) -> None:
        self.drop(db)
        self._admin(f"CREATE DATABASE {quote(self._name(db))}")

    def copy(self, src: str, dst: str) -> None:
        self.drop(dst)
        self._admin(f"CREATE DATABASE {quote(self._name(dst))} "
                    f"TEMPLATE {quote(self._name(src))}")

    def drop(self, db: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {quote(self._name(db))} WITH (FORCE)")

    def connect(self, db: str) -> Any:
        import psycopg

        params = {**self._params, "dbname": self._name(db)}
        return psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True)

    def url(self, db: str) -> str:
        from sqlalchemy.engine import URL

        p = self._params
        return URL.create(
            "postgresql+psycopg", username=p.get("user"), password=p.get("password"),
            host=p.get("host"), port=int(p["port"]) if p.get("port") else None,
            database=self._name(db),
        ).render_as_string(hide_password=False)

    def spec(self) -> dict[str, str]:
        return {"kind": "postgresql", "dsn": self.dsn, "prefix": self.prefix}


def backend_from_spec(spec: dict[str, str]) -> Backend:
    """Inverse of ``Backend.spec()``."""
    if spec["kind"] == "sqlite":
        return SQLiteBackend(spec["directory"])
    return PostgresBackend(spec["dsn"], prefix=spec["prefix"])
