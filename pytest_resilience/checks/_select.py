"""Reading events out of a history (or any iterable of events) for checkers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pytest_resilience import _validate
from pytest_resilience._events import Event, History

__all__ = ["HistoryLike", "checked_source", "events_of", "select"]

HistoryLike = History | Iterable[Event]


def checked_source(source: object) -> str | None:
    """``source`` when it is ``None`` (every source) or a non-empty string."""
    if source is None:
        return None
    return _validate.text(source, "source", what="an event source",
                          accepted="the source of the events to judge (a non-empty string), "
                                   "or None for every source")


def events_of(history: object) -> tuple[Event, ...]:
    """The events of ``history``: a ``History`` or an iterable of ``Event`` objects
    (``TypeError`` naming ``history`` for anything else)."""
    if isinstance(history, History):
        return history.snapshot()
    iterable = isinstance(history, Iterable) and not isinstance(history, str | bytes | Mapping)
    items: tuple[object, ...] = tuple(history) if isinstance(history, Iterable) and iterable \
        else ()
    events = tuple(e for e in items if isinstance(e, Event))
    _validate.check(iterable and len(events) == len(items), "history", history,
                    what="a history", kind=TypeError,
                    accepted="a History (the test's `history` fixture) or a list of its "
                             "Events (history.snapshot())")
    return events


def select(history: HistoryLike, prefix: str, source: str | None = None) -> list[Event]:
    """Events whose kind starts with ``prefix`` (e.g. ``"retry."``), from ``source`` if given."""
    checked_source(source)
    events = events_of(history)
    return [
        e for e in events
        if e.kind.startswith(prefix) and (source is None or e.source == source)
    ]
