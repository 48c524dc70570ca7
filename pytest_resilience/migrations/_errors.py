"""Errors of the migration runner, all ``ResilienceError`` subclasses."""

from __future__ import annotations

from pytest_resilience import ResilienceError

__all__ = ["DependencyError", "DriftError", "MigrationError", "NonTransactionalError"]


class MigrationError(ResilienceError):
    """A migration set that is malformed, or a run that cannot go ahead as asked."""


class DependencyError(MigrationError):
    """A ``-- depends:`` header names an unknown version, or dependencies form a cycle."""


class DriftError(MigrationError):
    """An applied migration's file changed (or vanished) since it was applied."""


class NonTransactionalError(MigrationError):
    """A transactional migration holds a statement that no transaction can contain."""
