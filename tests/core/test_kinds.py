"""Event kinds are declared once, and every emitter uses the declaration."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TypedDict

import pytest

import pytest_resilience
from pytest_resilience import History, VirtualClock, emit, kinds
from pytest_resilience._events import set_strict
from pytest_resilience.kinds import RETRY_ATTEMPT, UndeclaredEvent, declare, declared

ROOT = Path(pytest_resilience.__file__).parent.parent


def _emit_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for pkg in ("pytest_resilience", "faults"):
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id == "emit" and node.args):
                    calls.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return calls


def test_every_emitter_passes_a_declared_constant() -> None:
    declared_names = set(kinds.__all__)
    offenders = []
    for where, call in _emit_calls():
        first = call.args[0]
        names = [n.id for n in ast.walk(first) if isinstance(n, ast.Name)]
        literals = [n for n in ast.walk(first) if isinstance(n, ast.Constant)
                    and isinstance(n.value, str)]
        if literals or not names or not any(n in declared_names or n == "kind" for n in names):
            offenders.append(f"{where}: {ast.unparse(first)}")
    assert len(_emit_calls()) > 50  # the walk found the emitters
    assert offenders == []


def test_strict_mode_refuses_undeclared_kinds_and_attributes() -> None:
    history = History()
    with pytest.raises(UndeclaredEvent) as info:
        emit("retry.nope", "svc", history=history)
    assert str(info.value) == (
        "event kind 'retry.nope' is not declared. Declare it in pytest_resilience/_kinds.py "
        "(or with pytest_resilience.kinds.declare) and emit the constant."
    )
    with pytest.raises(UndeclaredEvent) as info:
        emit(RETRY_ATTEMPT, "svc", history=history, attempt=1, outcome="ok", error=None)
    assert "missing attribute(s) ['elapsed']" in str(info.value)
    with pytest.raises(UndeclaredEvent, match=r"undeclared attribute\(s\) \['colour'\]"):
        emit(RETRY_ATTEMPT, "svc", history=history, attempt=1, outcome="ok", error=None,
             elapsed=0.0, colour="red")
    assert len(history) == 0


def test_outside_strict_mode_any_kind_is_recorded() -> None:
    history = History()
    set_strict(False)
    try:
        emit("user.thing", "svc", history=history, anything=1)
    finally:
        set_strict(True)
    assert history.kinds() == ["user.thing"]


def test_a_kind_reads_its_events_attributes_typed() -> None:
    history = History()
    emit(RETRY_ATTEMPT, "svc", VirtualClock(), history=history, attempt=2, outcome="error",
         error="E()", elapsed=0.5)
    (event,) = history.select(RETRY_ATTEMPT)
    assert RETRY_ATTEMPT.attrs(event)["attempt"] == 2
    assert type(event.kind) is str  # the plain name is stored (it travels through xdist)
    assert RETRY_ATTEMPT.family == "retry"
    with pytest.raises(ValueError, match=r"event kind 'retry\.attempt' is not 'retry\.sleep'"):
        kinds.RETRY_SLEEP.attrs(event)


class _Attrs(TypedDict):
    """A user's record."""

    size: int


def test_users_declare_their_own_kinds_once() -> None:
    kind = declare("shop.order", _Attrs, source="shop", doc="an order")
    assert declare("shop.order", _Attrs, source="shop", doc="an order") is kind
    assert declared("shop.order") is kind
    with pytest.raises(ValueError, match="already declared with another record"):
        declare("shop.order", dict, source="shop", doc="x")  # type: ignore[type-var]
    with pytest.raises(ValueError, match="is not a dotted event kind"):
        declare("order", _Attrs, source="shop", doc="x")


def test_design_md_shows_the_declared_table() -> None:
    design = (ROOT / "DESIGN.md").read_text(encoding="utf-8")
    assert kinds.markdown_table(builtin_only=True) in design, (
        "DESIGN.md's event table is stale: paste pytest_resilience.kinds.markdown_table()."
    )
