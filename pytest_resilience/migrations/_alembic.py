"""Alembic migrations as a crash-explorer source (optional extra ``migrations``:
alembic + SQLAlchemy).

Statements are hooked through SQLAlchemy's ``before_cursor_execute`` and ``commit``
events, listened for on the ``Engine`` class, so whatever engine the project's
``env.py`` builds is seen. The database URL is handed to ``env.py`` as the main option
``sqlalchemy.url``; ``env.py`` may skip ``fileConfig`` when the config attribute
``configure_logger`` is False (as pytest-alembic does).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_resilience import validate
from pytest_resilience.migrations import _checks
from pytest_resilience.migrations._backends import Backend
from pytest_resilience.migrations._dialects import execute, quote
from pytest_resilience.migrations._errors import MigrationError
from pytest_resilience.migrations._runner import Point
from pytest_resilience.migrations._sources import Hook, Step

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["AlembicSource"]


def _slug(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (text or "").lower()).strip("_")[:40]


class AlembicSource:
    """The revisions of an ``alembic.ini`` project, base to head (one head, no merges).

    ``options`` are main options set on the config before each command (for ``env.py``
    to read); ``section`` is the ini section; ``version_table`` alembic's table.
    """

    def __init__(self, config: str | Path, *, section: str = "alembic",
                 options: Mapping[str, str] | None = None,
                 version_table: str = "alembic_version") -> None:
        from alembic.script import ScriptDirectory

        self.path = validate.path(config, "config").resolve()
        if not self.path.is_file():
            raise MigrationError(f"alembic config {str(self.path)!r} does not exist.")
        self.section = validate.text(section, "section", what="an ini section name")
        self.options = _checks.options(options)
        self.version_table = validate.text(version_table, "version_table",
                                           what="a table name")
        self.bookkeeping: tuple[str, ...] = (version_table,)
        config_file = self._config(None)
        sections = config_file.file_config.sections()
        validate.check(self.section in sections, "section", self.section,
                       what=f"a section of {self.path.name}", accepted=f"one of {sections}")
        script = ScriptDirectory.from_config(config_file)
        heads = script.get_heads()
        if len(heads) > 1:
            raise MigrationError(
                f"{self.path.name}: {len(heads)} heads {sorted(heads)}; the crash explorer "
                "needs one line of revisions. Merge them (alembic merge heads).")
        self._steps: list[Step] = []
        for rev in reversed(list(script.walk_revisions("base", "heads"))):
            down = rev.down_revision
            if isinstance(down, tuple | list):
                raise MigrationError(
                    f"revision {rev.revision} merges {list(down)}; the crash explorer needs "
                    "one line of revisions.")
            label = f"{rev.revision}_{_slug(rev.doc)}".rstrip("_")
            self._steps.append(Step(rev.revision, label, down))

    def _config(self, url: str | None) -> Config:
        from alembic.config import Config

        cfg = Config(str(self.path), ini_section=self.section,
                     attributes={"configure_logger": False})
        for key, value in self.options.items():
            cfg.set_main_option(key, value)
        if url is not None:
            cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        return cfg

    def steps(self) -> list[Step]:
        return list(self._steps)

    def _label(self, version: str) -> str:
        return next(s.label for s in self._steps if s.version == version)

    @contextmanager
    def _hooked(self, hook: Hook | None, version: str) -> Iterator[None]:
        if hook is None:
            yield
            return
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        label = self._label(version)
        where = f"revision {label}"
        count = [0]

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            count[0] += 1
            kind: Literal["record", "statement"] = (
                "record" if self.version_table in statement else "statement")
            hook(Point(label, version, "up", kind, statement, count[0], where=where))

        def commit(conn: Any) -> None:
            hook(Point(label, version, "up", "commit", "COMMIT", where=where))

        event.listen(Engine, "before_cursor_execute", before)
        event.listen(Engine, "commit", commit)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", before)
            event.remove(Engine, "commit", commit)

    def upgrade(self, backend: Backend, db: str, to: str, hook: Hook | None = None) -> None:
        from alembic import command

        with self._hooked(hook, to):
            command.upgrade(self._config(backend.url(db)), to)

    def downgrade(self, backend: Backend, db: str, to: str | None) -> None:
        from alembic import command

        command.downgrade(self._config(backend.url(db)), to or "base")

    def current(self, conn: Any) -> str | None:
        from pytest_resilience.migrations._dialects import dialect_for

        if self.version_table not in dialect_for(conn).tables(conn):
            return None
        rows = execute(conn, f"SELECT version_num FROM {quote(self.version_table)}")
        if len(rows) > 1:
            raise MigrationError(f"{self.version_table} holds {len(rows)} versions: {rows}.")
        return str(rows[0][0]) if rows else None

    def spec(self) -> dict[str, Any]:
        return {"kind": "alembic", "config": str(self.path),
                "options": {"section": self.section, "options": self.options,
                            "version_table": self.version_table}}
