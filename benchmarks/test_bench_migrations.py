"""Migrations: crash points per second on a 20-migration set, and the runner's upgrade of
the same 20 migrations beside a plain ``alembic upgrade head`` (the peer).

No peer explores crash points (pytest-alembic checks up/down consistency, not crashes),
so that figure stands alone. Both upgrades write to the same kind of directory (tmpfs
when there is one, so the tools are measured and not the disk's fsync).

Run: ``pytest benchmarks/test_bench_migrations.py --benchmark-only -s``.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_resilience.migrations import CrashExplorer, Migrator, load_migrations

N = 20
ROUNDS = 5


def _statements(i: int) -> list[str]:
    stmts = [f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, v INTEGER)",
             f"CREATE INDEX t{i}_name ON t{i} (name)",
             f"INSERT INTO t{i} (name, v) VALUES ('a', 1), ('b', 2), ('c', 3)"]
    if i > 1:
        stmts.append(f"ALTER TABLE t{i - 1} ADD COLUMN extra{i} TEXT")
    return stmts


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="bench-migrations-", dir=shm) as d:
        yield Path(d)


@pytest.fixture(scope="module")
def sql_set(workdir: Path) -> Path:
    directory = workdir / "sql"
    directory.mkdir()
    for i in range(1, N + 1):
        (directory / f"{i:04d}_m{i}.up.sql").write_text(";\n".join(_statements(i)) + ";\n")
        (directory / f"{i:04d}_m{i}.down.sql").write_text(f"DROP TABLE t{i};\n")
    return directory


ENV = '''
from alembic import context
from sqlalchemy import engine_from_config, event, pool

config = context.config
engine = engine_from_config(config.get_section(config.config_ini_section, {}),
                            prefix="sqlalchemy.", poolclass=pool.NullPool)


@event.listens_for(engine, "connect")
def _connect(dbapi_connection, _record):
    dbapi_connection.isolation_level = None


@event.listens_for(engine, "begin")
def _begin(connection):
    connection.exec_driver_sql("BEGIN")


with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=True,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
'''


@pytest.fixture(scope="module")
def alembic_ini(workdir: Path) -> Path:
    pytest.importorskip("alembic", reason="the peer is alembic")
    root = workdir / "alembic"
    (root / "versions").mkdir(parents=True)
    (root / "env.py").write_text(ENV)
    for i in range(1, N + 1):
        down = repr(f"{i - 1:04d}") if i > 1 else "None"
        body = "\n".join(f"    op.execute({s!r})" for s in _statements(i))
        (root / "versions" / f"{i:04d}_m{i}.py").write_text(
            f"from alembic import op\nrevision = {f'{i:04d}'!r}\ndown_revision = {down}\n"
            f"branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n{body}\n\n\n"
            f"def downgrade():\n    op.execute('DROP TABLE t{i}')\n")
    ini = workdir / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {root}\npath_separator = os\n"
                   f"sqlalchemy.url = sqlite:///{workdir / 'unused.db'}\n")
    return ini


def test_crash_points_per_second(benchmark: pytest.FixtureRequest, sql_set: Path) -> None:
    """Every crash point of 20 migrations (exception crashes, no SIGKILL, no round trip)."""
    points: list[int] = []

    def explore() -> None:
        with CrashExplorer(sql_set, kill_sample=0, round_trip=False) as explorer:
            points.append(explorer.run().points)

    started = time.perf_counter()
    benchmark.pedantic(explore, rounds=3, iterations=1)  # type: ignore[attr-defined]
    elapsed = (time.perf_counter() - started) / 3
    rate = points[0] / elapsed
    benchmark.extra_info["crash_points"] = points[0]  # type: ignore[attr-defined]
    benchmark.extra_info["points_per_second"] = round(rate, 1)  # type: ignore[attr-defined]
    print(f"\n{points[0]} crash points over {N} migrations: {rate:.0f} points/s")
    assert points[0] == sum(len(_statements(i)) + 2 for i in range(1, N + 1))


def test_upgrade_beside_alembic(benchmark: pytest.FixtureRequest, sql_set: Path,
                                alembic_ini: Path, workdir: Path) -> None:
    """Our runner vs ``alembic upgrade head`` on the same 20 migrations, alternating in
    each round; ``extra_info["ours_over_alembic"]`` is the ratio of the medians."""
    from alembic import command
    from alembic.config import Config

    migrations = load_migrations(sql_set)
    times: dict[str, list[float]] = {"ours": [], "alembic": []}
    serial = [0]

    def ours() -> None:
        serial[0] += 1
        conn = sqlite3.connect(workdir / f"ours{serial[0]}.db", isolation_level=None)
        Migrator(conn, migrations).upgrade()
        conn.close()

    def peer() -> None:
        serial[0] += 1
        config = Config(str(alembic_ini))
        config.set_main_option("sqlalchemy.url", f"sqlite:///{workdir / f'peer{serial[0]}.db'}")
        command.upgrade(config, "head")

    def both() -> None:
        for name, fn in (("ours", ours), ("alembic", peer)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)

    benchmark.pedantic(both, rounds=ROUNDS, iterations=1, warmup_rounds=1)  # type: ignore[attr-defined]
    ratio = statistics.median(times["ours"]) / statistics.median(times["alembic"])
    benchmark.extra_info["ours_over_alembic"] = round(ratio, 3)  # type: ignore[attr-defined]
    print(f"\nupgrade of {N} migrations: ours {statistics.median(times['ours']) * 1000:.1f} ms,"
          f" alembic {statistics.median(times['alembic']) * 1000:.1f} ms, ratio {ratio:.2f}")
