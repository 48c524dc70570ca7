"""The tree of watched calls in a history, and the calls each layer made per user request.

``watch_calls`` writes ``call.start``/``call.end`` with the watched call each one ran
inside (``parent``). A user request is a correlation id when calls carry one, else an
outermost watched call; a layer is an event source (the ``name=`` of ``watch_calls``; in a
history with no watched calls, a ``Retry``'s name for its ``retry.attempt`` events).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from pytest_resilience._events import Event
from pytest_resilience.kinds import CALL_END, CALL_START, RETRY_ATTEMPT

__all__ = ["Call", "Requests", "calls", "requests"]


@dataclass
class Call:
    """One watched call: its start and end events (``end`` is None while it runs)."""

    id: int
    start: Event
    end: Event | None = None
    children: list[Call] = field(default_factory=list)

    @property
    def source(self) -> str:
        """The layer (the events' source)."""
        return self.start.source

    @property
    def parent(self) -> int | None:
        """The id of the watched call this one ran inside."""
        parent = self.start.attrs.get("parent")
        return parent if isinstance(parent, int) else None

    @property
    def outcome(self) -> str | None:
        """``ok``/``error``, or None while it runs."""
        return None if self.end is None else str(self.end.attrs.get("outcome"))

    @property
    def error(self) -> str | None:
        """The type name of what it raised."""
        return None if self.end is None else self.end.attrs.get("error")


def calls(events: Iterable[Event]) -> dict[int, Call]:
    """The watched calls by id, in the order they started, with their children linked."""
    found: dict[int, Call] = {}
    for event in events:
        call = event.attrs.get("call")
        if not isinstance(call, int):
            continue
        if event.kind == CALL_START:
            found[call] = Call(call, event)
        elif event.kind == CALL_END and call in found:
            found[call].end = event
    for call in found.values():
        parent = found.get(call.parent) if call.parent is not None else None
        if parent is not None:
            parent.children.append(call)
    return found


@dataclass
class Requests:
    """Calls per layer, in all and per user request."""

    count: int
    layers: Counter[str]
    per_request: list[tuple[Event, Counter[str]]]
    depth: dict[str, int]

    def ratio(self, layer: str) -> float:
        """Calls of ``layer`` per user request."""
        return self.layers[layer] / self.count if self.count else 0.0

    def ordered(self) -> list[str]:
        """Layers from the outermost to the innermost."""
        return sorted(self.layers, key=lambda layer: (self.depth.get(layer, 0), layer))


def _root(call: Call, found: dict[int, Call]) -> Call:
    seen = {call.id}
    while call.parent is not None and call.parent in found and call.parent not in seen:
        call = found[call.parent]
        seen.add(call.id)
    return call


def _depth(call: Call, found: dict[int, Call]) -> int:
    depth, seen = 0, {call.id}
    while call.parent is not None and call.parent in found and call.parent not in seen:
        call = found[call.parent]
        seen.add(call.id)
        depth += 1
    return depth


def requests(events: Iterable[Event]) -> Requests:
    """Group the calls of each layer by user request (see the module doc).

    With no watched calls at all, the layers are the retries (``retry.attempt`` events,
    one call each) and the requests are the first attempts of the retry that made the
    fewest (the outermost).
    """
    snapshot = list(events)
    found = calls(snapshot)
    groups: dict[object, tuple[Event, Counter[str]]] = {}
    depth: dict[str, int] = {}
    for call in found.values():
        root = _root(call, found)
        correlation = call.start.attrs.get("correlation_id")
        key: object = ("id", correlation) if correlation else ("call", root.id)
        group = groups.setdefault(key, (root.start, Counter()))
        group[1][call.source] += 1
        depth[call.source] = min(depth.get(call.source, 1 << 30), _depth(call, found))
    attempts = [e for e in snapshot if e.kind == RETRY_ATTEMPT]
    if attempts and not found:
        firsts = Counter(e.source for e in attempts if e.attrs.get("attempt") == 1)
        total = Counter(e.source for e in attempts)
        count = min(firsts.values()) if firsts else 0
        order = sorted(total, key=lambda s: firsts.get(s, 0))
        return Requests(count, total, [], {s: i for i, s in enumerate(order)})
    layers: Counter[str] = Counter()
    for _, counts in groups.values():
        layers.update(counts)
    return Requests(len(groups), layers, list(groups.values()), depth)
