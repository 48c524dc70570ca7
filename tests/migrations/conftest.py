"""Migration sets written into tmp dirs, and a PostgreSQL server for the PostgreSQL path."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

#: A correct set: every migration transactional, with a trigger body holding ';'.
GOOD = {
    "0001_create_users.up.sql": """-- the users
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO users (name) VALUES ('ada; lovelace');
""",
    "0001_create_users.down.sql": "DROP TABLE users;\n",
    "0002_create_orders.up.sql": """CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    amount INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX orders_user ON orders(user_id);
""",
    "0002_create_orders.down.sql": "DROP INDEX orders_user;\nDROP TABLE orders;\n",
    "0003_audit.up.sql": """-- depends: 0001, 0002
CREATE TABLE audit (what TEXT);
CREATE TRIGGER orders_audit AFTER INSERT ON orders BEGIN
    INSERT INTO audit (what) VALUES ('order; ' || NEW.id);
END;
ALTER TABLE users ADD COLUMN email TEXT;
UPDATE users SET email = name || '@example.com';
""",
    "0003_audit.down.sql": """DROP TRIGGER orders_audit;
DROP TABLE audit;
ALTER TABLE users DROP COLUMN email;
""",
}

#: A table rebuild declared non-transactional: a crash between DROP and RENAME loses rows.
REBUILD = {
    "0004_rebuild_users.up.sql": """-- transactional: false
CREATE TABLE users_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
INSERT INTO users_new SELECT id, name, email FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
""",
    "0004_rebuild_users.down.sql": "SELECT 1;\n",
}

Files = dict[str, str]


@pytest.fixture
def good_files() -> Files:
    """The files of a correct, crash-safe set (3 migrations)."""
    return dict(GOOD)


@pytest.fixture
def rebuild_files() -> Files:
    """``good_files`` plus a non-transactional table rebuild (0004)."""
    return {**GOOD, **REBUILD}


@pytest.fixture
def write_set(tmp_path: Path) -> Callable[..., Path]:
    """``write_set(files, name="migrations")``: a directory holding ``files``."""

    def write(files: Files, name: str = "migrations") -> Path:
        directory = tmp_path / name
        directory.mkdir(exist_ok=True)
        for filename, text in files.items():
            (directory / filename).write_text(text, encoding="utf-8")
        return directory

    return write


# -- PostgreSQL ------------------------------------------------------------------------------
def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A throwaway PostgreSQL server on a loopback port (initdb + pg_ctl in a temp dir,
    as the ``postgres`` user when run as root); skips when PostgreSQL or psycopg is absent.
    """
    pytest.importorskip("psycopg", reason="the PostgreSQL path needs psycopg")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run initdb as")
    root = Path(tempfile.mkdtemp(prefix="resilience-pg-"))
    data = root / "data"
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    as_user = {"user": user.pw_uid, "group": user.pw_gid} if user is not None else {}
    port = _free_port()
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                    "--no-sync"], check=True, capture_output=True, timeout=120, **as_user)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                    str(root / "log"), "start"], check=True, capture_output=True, timeout=120,
                   **as_user)
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                        "stop"], capture_output=True, timeout=120, check=False, **as_user)
        with contextlib.suppress(OSError):
            shutil.rmtree(root)
