"""The coverage matrix of a test: operations x fault families x properties, from its history.

An *operation* is what the test observed being done: the source of an ``sla.sample`` or
``trace.operation`` event, or the ``function`` of a ``call.start`` event. A *fault
family* is the ``family`` of ``fault.*`` events. A *property* is a checker (its
``check.verdict`` events) or a budget (its ``sla.budget`` events; a budget scoped to an
operation applies to that operation only).

An operation is *exercised under* a family when it was observed while a fault of that
family was active (from its ``fault.armed`` to its ``fault.disarmed``) and had fired
(a ``fault.fired`` of that family), or when such a fault fired during the operation.
Each cell (operation, family, property) is ``PASS`` or ``FAIL`` (the property's verdict)
when the operation was exercised under the family, else ``NOT EXERCISED``; an unverified
budget leaves its cells ``NOT EXERCISED``. A ``chaos.run`` event's ``coverage`` (the
matrix merged over its plans) is merged in. Everything is plain builtins, so matrices
travel through xdist and JSON; ``merge`` combines two (per worker, per test, per plan).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_resilience.kinds import (
    CALL_START,
    CHAOS_RUN,
    CHECK_VERDICT,
    FAULT_ARMED,
    FAULT_DISARMED,
    FAULT_FIRED,
    SLA_BUDGET,
    SLA_SAMPLE,
    TRACE_OPERATION,
)

__all__ = ["FAIL", "NOT_EXERCISED", "PASS", "coverage_matrix", "merge", "missing", "render",
           "union"]

PASS = "PASS"
FAIL = "FAIL"
NOT_EXERCISED = "NOT EXERCISED"
_RANK = {NOT_EXERCISED: 0, PASS: 1, FAIL: 2}

Matrix = dict[str, Any]


def empty() -> Matrix:
    """A matrix with nothing observed."""
    return {"operations": [], "families": [], "properties": {}, "exercised": {}, "cells": {}}


class _Families:
    """Which families are *hot* (active and fired) as the history is read in order."""

    def __init__(self) -> None:
        self.active: dict[str, dict[str, int]] = {}  # family -> source -> open windows
        self.hot: dict[str, bool] = {}
        self.cooled_at: dict[str, float] = {}  # when a hot period last ended

    def read(self, event: Any) -> None:
        """Follow one ``fault.*`` event."""
        family = str(event.attrs.get("family", "?"))
        if event.kind == FAULT_ARMED:
            self.armed(family, event.source)
        elif event.kind == FAULT_DISARMED:
            self.disarmed(family, event.source, event.time)
        else:
            self.fired(family, event.time)

    def armed(self, family: str, source: str) -> None:
        sources = self.active.setdefault(family, {})
        sources[source] = sources.get(source, 0) + 1

    def disarmed(self, family: str, source: str, time: float) -> None:
        sources = self.active.get(family, {})
        if sources.get(source):
            sources[source] -= 1
        if not any(sources.values()) and self.hot.get(family):
            self.hot[family] = False
            self.cooled_at[family] = time

    def fired(self, family: str, time: float) -> None:
        if any(self.active.get(family, {}).values()):
            self.hot[family] = True
        else:  # a fault with no window acts at an instant
            self.cooled_at[family] = max(self.cooled_at.get(family, time), time)

    def under(self, start: float) -> list[str]:
        """Families hot now, or hot at some moment since ``start``."""
        return [f for f in self.families()
                if self.hot.get(f) or self.cooled_at.get(f, -1e300) >= start]

    def families(self) -> list[str]:
        return list(dict.fromkeys([*self.active, *self.hot, *self.cooled_at]))


#: A watched call's end (declared by the observers): its ``duration`` widens the window in
#: which a fault counts for the call its ``call.start`` began.
_CALL_END = "call.end"


def _observed(kind: str, source: str, attrs: Mapping[str, Any],
              time: float) -> tuple[str, float] | None:
    """(operation, start time) when the event observes an operation."""
    if kind == SLA_SAMPLE:
        return source, time - float(attrs.get("seconds") or 0.0)
    if kind == TRACE_OPERATION:
        return source, time - float(attrs.get("duration") or 0.0)
    if kind == CALL_START:
        return str(attrs.get("function", source)), time
    if kind == _CALL_END:
        return str(attrs.get("function", source)), time - float(attrs.get("duration") or 0.0)
    return None


def coverage_matrix(history: Iterable[Any]) -> Matrix:
    """The coverage matrix of ``history`` (a ``History`` or any iterable of events, read
    in order) as plain builtins::

        {"operations": [...], "families": [...],
         "properties": {name: {"operation": op or None, "verdict": "PASS"|"FAIL"|None}},
         "exercised": {operation: {family: observations under it}},
         "cells": {operation: {family: {property: "PASS"|"FAIL"|"NOT EXERCISED"}}}}
    """
    state = _Families()
    operations: dict[str, None] = {}
    exercised: dict[str, dict[str, int]] = {}
    properties: dict[str, dict[str, Any]] = {}
    nested: list[Matrix] = []
    calls: dict[Any, set[str]] = {}  # a watched call's id -> families counted at its start
    for event in history:
        kind, attrs = event.kind, event.attrs
        if kind in (FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED):
            state.read(event)
        elif kind in (CHECK_VERDICT, SLA_BUDGET):
            _judge(properties, event)
        elif kind == CHAOS_RUN and isinstance(attrs.get("coverage"), Mapping):
            nested.append(dict(attrs["coverage"]))
        elif (seen := _observed(kind, event.source, attrs, event.time)) is not None:
            operation, start = seen
            operations[operation] = None
            row = exercised.setdefault(operation, {})
            counted: set[str] = set()
            if kind == CALL_START:
                counted = calls.setdefault(attrs.get("call"), set())
            elif kind == _CALL_END:
                counted = calls.pop(attrs.get("call"), set())
            for family in state.under(start):
                if family not in counted:
                    row[family] = row.get(family, 0) + 1
                    counted.add(family)
    matrix = _build(list(operations), state.families(), properties, exercised)
    for other in nested:
        matrix = merge(matrix, other)
    return matrix


def _judge(properties: dict[str, dict[str, Any]], event: Any) -> None:
    attrs = event.attrs
    if event.kind == CHECK_VERDICT:
        name, operation = str(attrs.get("checker")), None
    else:
        name, operation = str(attrs.get("budget")), attrs.get("operation")
    passed = attrs.get("passed")
    entry = properties.setdefault(name, {"operation": operation, "verdict": None})
    verdict = None if passed is None else (PASS if passed else FAIL)
    entry["verdict"] = _worst(entry["verdict"], verdict)


def _worst(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if _RANK[a] >= _RANK[b] else b


def _applies(prop: Mapping[str, Any], operation: str) -> bool:
    scope = prop.get("operation")
    return scope is None or scope == operation


def _build(operations: Sequence[str], families: Sequence[str],
           properties: Mapping[str, Mapping[str, Any]],
           exercised: Mapping[str, Mapping[str, int]],
           cells: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None) -> Matrix:
    """A matrix whose cells are those given, the rest derived from one history's data."""
    ops = sorted(set(operations))
    fams = sorted(set(families))
    props = {name: dict(properties[name]) for name in sorted(properties)}
    out_cells: dict[str, dict[str, dict[str, str]]] = {}
    for op in ops:
        row = exercised.get(op, {})
        for family in fams:
            for name, prop in props.items():
                if not _applies(prop, op):
                    continue
                given = (cells or {}).get(op, {}).get(family, {}).get(name)
                if given is None:
                    given = (prop["verdict"] or NOT_EXERCISED) if row.get(family) else \
                        NOT_EXERCISED
                out_cells.setdefault(op, {}).setdefault(family, {})[name] = given
    return {
        "operations": ops,
        "families": fams,
        "properties": props,
        "exercised": {op: {f: n for f, n in sorted(exercised.get(op, {}).items()) if n}
                      for op in ops},
        "cells": out_cells,
    }


def merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> Matrix:
    """Two matrices combined (xdist workers, plans of a chaos run, tests): a cell is
    ``FAIL`` if it failed in either, else ``PASS`` if it passed in either, else
    ``NOT EXERCISED``; observation counts add up."""
    properties: dict[str, dict[str, Any]] = {}
    for source in (a, b):
        for name, prop in source.get("properties", {}).items():
            entry = properties.setdefault(name, {"operation": prop.get("operation"),
                                                 "verdict": None})
            entry["verdict"] = _worst(entry["verdict"], prop.get("verdict"))
    exercised: dict[str, dict[str, int]] = {}
    cells: dict[str, dict[str, dict[str, str]]] = {}
    for source in (a, b):
        for op, row in source.get("exercised", {}).items():
            mine = exercised.setdefault(op, {})
            for family, n in row.items():
                mine[family] = mine.get(family, 0) + int(n)
        for op, row in source.get("cells", {}).items():
            for family, props in row.items():
                mine_cells = cells.setdefault(op, {}).setdefault(family, {})
                for name, status in props.items():
                    mine_cells[name] = _worst(mine_cells.get(name), status) or NOT_EXERCISED
    # cells neither side judged (an operation of one side, a property of the other)
    neutral = {name: {**prop, "verdict": None} for name, prop in properties.items()}
    filled = _build([*a.get("operations", ()), *b.get("operations", ())],
                    [*a.get("families", ()), *b.get("families", ())], neutral, {}, cells)
    filled["properties"] = {name: properties[name] for name in sorted(properties)}
    filled["exercised"] = {op: dict(sorted(exercised.get(op, {}).items()))
                           for op in filled["operations"]}
    return filled


def union(a: Mapping[str, Any], b: Mapping[str, Any]) -> Matrix:
    """Two matrices of different tests side by side: the cells each has (a cell in both is
    its worse status), observation counts added; unlike ``merge``, no cell is made up for
    an operation of one test and a property or family of another."""
    out: Matrix = empty()
    for key in ("operations", "families"):
        out[key] = sorted({*a.get(key, ()), *b.get(key, ())})
    for source in (a, b):
        for name, prop in source.get("properties", {}).items():
            entry = out["properties"].setdefault(name, {"operation": prop.get("operation"),
                                                        "verdict": None})
            entry["verdict"] = _worst(entry["verdict"], prop.get("verdict"))
        for op, row in source.get("exercised", {}).items():
            mine = out["exercised"].setdefault(op, {})
            for family, n in row.items():
                mine[family] = mine.get(family, 0) + int(n)
        for op, row in source.get("cells", {}).items():
            for family, props in row.items():
                cells = out["cells"].setdefault(op, {}).setdefault(family, {})
                for name, status in props.items():
                    cells[name] = _worst(cells.get(name), status) or NOT_EXERCISED
    return out


def missing(matrix: Mapping[str, Any], required: Iterable[Sequence[str]]) -> list[str]:
    """The required cells never exercised, described: ``(operation, family)`` needs the
    operation observed under the family; ``(operation, family, property)`` also needs
    the property judged there."""
    out = []
    for cell in required:
        op, family, *rest = cell
        if not matrix.get("exercised", {}).get(op, {}).get(family):
            out.append(f"{op} x {family}")
            continue
        if rest:
            status = matrix.get("cells", {}).get(op, {}).get(family, {}).get(rest[0])
            if status not in (PASS, FAIL):
                out.append(f"{op} x {family} x {rest[0]}")
    return out


def render(matrix: Mapping[str, Any], *, observed_only: bool = False) -> list[str]:
    """Lines for a terminal: one per operation x family, each property's status (only
    the pairs observed at least once with ``observed_only``)."""
    lines = []
    for op in matrix.get("operations", ()):
        row = matrix.get("cells", {}).get(op, {})
        for family in matrix.get("families", ()):
            cells = row.get(family, {})
            seen = matrix.get("exercised", {}).get(op, {}).get(family, 0)
            if observed_only and not seen:
                continue
            shown = ", ".join(f"{name}: {status}" for name, status in cells.items())
            lines.append(f"{op} x {family} ({seen} observed): {shown or NOT_EXERCISED}")
    return lines
