"""Alembic environment of the shop example.

On SQLite it applies SQLAlchemy's documented pysqlite recipe (the driver's own
transaction handling off, an explicit BEGIN on every transaction) so that each migration,
DDL included, commits or rolls back as one. The crash tests prove that it matters: with
``sqlite_transactional_ddl = false`` a crash in the middle of a table rebuild loses rows.
"""

from __future__ import annotations

import sys
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic import context
from sqlalchemy import engine_from_config, event, pool

HERE = str(Path(__file__).resolve().parents[1])
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from shop_models import Base  # noqa: E402 (needs HERE on sys.path)

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=Base.metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    transactional = config.get_main_option("sqlite_transactional_ddl", "true") == "true"
    if engine.dialect.name == "sqlite" and transactional:

        @event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=True, transaction_per_migration=True,
                          transactional_ddl=transactional)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
