"""Argument checks shared by the migration tools (on top of ``pytest_resilience.validate``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from pytest_resilience import validate
from pytest_resilience.migrations._files import MigrationSet

if TYPE_CHECKING:
    from pytest_resilience.migrations._sources import Source

__all__ = ["backend", "is_source", "migration_set", "names", "options", "path_or_none"]

_BACKEND_METHODS = ("create", "copy", "drop", "connect", "url", "spec")
_SOURCE_METHODS = ("steps", "upgrade", "downgrade", "current", "spec")


def is_source(value: object) -> TypeGuard[Source]:
    """Whether ``value`` is a migration Source (``SqlSource``, ``AlembicSource``)."""
    return not isinstance(value, type) and all(
        callable(getattr(value, m, None)) for m in _SOURCE_METHODS)


def migration_set(value: object, name: str = "migrations") -> Any:
    """``value`` when it is a ``MigrationSet``, else the path of a migrations directory."""
    if isinstance(value, MigrationSet):
        return value
    return validate.path(value, name, what="migrations",
                         accepted="a migrations directory, a MigrationSet or a Source "
                                  "such as AlembicSource")


def path_or_none(value: object, name: str) -> Path | None:
    """``value`` as a ``Path``, or ``None``."""
    return None if value is None else validate.path(value, name)


def backend(value: Any, name: str = "backend") -> Any:
    """``value`` when it is a Backend (``SQLiteBackend``, ``PostgresBackend``)."""
    validate.check(not isinstance(value, type) and hasattr(value, "dialect") and all(
        callable(getattr(value, m, None)) for m in _BACKEND_METHODS), name, value,
        what="a database backend", accepted="a SQLiteBackend or PostgresBackend instance",
        kind=TypeError)
    return value


def names(value: object, name: str) -> tuple[str, ...]:
    """An iterable of strings (not one string) as a tuple."""
    ok = isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)
    items: tuple[object, ...] = tuple(value) if ok else ()  # type: ignore[arg-type]
    validate.check(ok and all(isinstance(i, str) for i in items), name, value,
                   what="a list of names", accepted="a list of strings",
                   kind=TypeError)
    return tuple(str(i) for i in items)


def options(value: object, name: str = "options") -> dict[str, str]:
    """A mapping of strings to strings (``None``: empty) as a dict."""
    if value is None:
        return {}
    ok = isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    validate.check(ok, name, value, what="a mapping of option names to values",
                   accepted="a dict of str to str, or None", kind=TypeError)
    return {str(k): str(v) for k, v in value.items()}  # type: ignore[attr-defined]
