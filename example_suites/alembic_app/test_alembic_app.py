"""The shop's alembic migrations, crash-tested: one test per revision, each crashed
before every statement it runs (and by SIGKILL at a sampled point), then up -> down -> up.

Run: ``pytest -p resilience example_suites/alembic_app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("alembic", reason="the alembic example needs the 'migrations' extra")

from pytest_resilience.migrations import (
    AlembicSource,
    CrashExplorer,
    MigrationCase,
)

HERE = Path(__file__).parent


def seed_shop(conn: Any, version: str | None) -> None:
    """Rows a real shop would hold at each version: they must survive every crash."""
    if version == "0001":
        conn.execute("INSERT INTO users (name) VALUES ('Ada'), ('Grace')")
    elif version == "0002":
        conn.execute("INSERT INTO orders (user_id, amount_cents) VALUES (1, 1250), (2, 99)")
    elif version == "0003":
        conn.execute("INSERT INTO users (name, email) VALUES ('Linus', 'linus@example.com')")


def seed_with_null_amount(conn: Any, version: str | None) -> None:
    """``seed_shop`` plus an order without amount, which 0004 turns into 0."""
    seed_shop(conn, version)
    if version == "0002":
        conn.execute("INSERT INTO orders (user_id, amount_cents) VALUES (2, NULL)")


@pytest.mark.migrations("alembic.ini", seed=seed_shop, kill_sample=1)
def test_revision_survives_a_crash_before_every_statement(migration: MigrationCase) -> None:
    report = migration.check()
    assert len(report.points) >= 3  # at least a statement, the version row and COMMIT


def test_the_models_match_the_migrated_schema(tmp_path: Path) -> None:
    """pytest-alembic's model-vs-DDL check: autogenerate finds nothing to add."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from shop_models import Base
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    config = Config(str(HERE / "alembic.ini"), attributes={"configure_logger": False})
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_the_round_trip_shows_0004_cannot_give_back_a_null_amount() -> None:
    """0004 backfills NULL amounts with 0; its down cannot know which were NULL. The
    round trip says so: the seeded order comes back changed."""
    source = AlembicSource(HERE / "alembic.ini")
    with CrashExplorer(source, seed=seed_with_null_amount, kill_sample=0) as explorer:
        report = explorer.explore("0004")
    assert [str(f) for f in report.findings] == [
        "0004_order_amount_required_order_status: up -> down -> up => after down, rows "
        "lost: orders: 1; after down, rows that version 0003 does not hold: orders: 1"]


def test_without_the_pysqlite_recipe_ddl_is_not_transactional() -> None:
    """The same revisions, with env.py's transactional-DDL recipe off: the driver commits
    each DDL statement on its own, and a crash leaves half a migration behind."""
    source = AlembicSource(HERE / "alembic.ini", options={"sqlite_transactional_ddl": "false"})
    with CrashExplorer(source, seed=seed_shop, kill_sample=0, round_trip=False) as explorer:
        report = explorer.explore("0002")
    assert not report.crash_safe
    assert str(report.findings[0]) == (
        "0002_create_orders: crash before statement 4 of revision 0002_create_orders: CREATE "
        "INDEX ix_orders_user_id ON orders (user_id) => schema differs from version 0001's: "
        "table orders is extra")
