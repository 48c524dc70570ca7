"""Reading events out of a history (or any iterable of events) for checkers."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_resilience import _validate
from pytest_resilience._events import Event, History

__all__ = ["HistoryLike", "checked_source", "select"]

HistoryLike = History | Iterable[Event]


def checked_source(source: object) -> str | None:
    """``source`` when it is ``None`` (every source) or a non-empty string."""
    if source is None:
        return None
    return _validate.text(source, "source", what="an event source",
                          accepted="the source of the events to judge (a non-empty string), "
                                   "or None for every source")


def select(history: HistoryLike, prefix: str, source: str | None = None) -> list[Event]:
    """Events whose kind starts with ``prefix`` (e.g. ``"retry."``), from ``source`` if given."""
    checked_source(source)
    events = history.snapshot() if isinstance(history, History) else tuple(history)
    return [
        e for e in events
        if e.kind.startswith(prefix) and (source is None or e.source == source)
    ]
