"""Reading events out of a history (or any iterable of events) for checkers."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_resilience._events import Event, History

__all__ = ["HistoryLike", "select"]

HistoryLike = History | Iterable[Event]


def select(history: HistoryLike, prefix: str, source: str | None = None) -> list[Event]:
    """Events whose kind starts with ``prefix`` (e.g. ``"retry."``), from ``source`` if given."""
    events = history.snapshot() if isinstance(history, History) else tuple(history)
    return [
        e for e in events
        if e.kind.startswith(prefix) and (source is None or e.source == source)
    ]
