"""watch_breaker: admitted and refused calls of a user's breaker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytest_resilience import History, VirtualClock
from pytest_resilience.observe import watch_breaker


class Refused(Exception):
    pass


class Gate:
    """A breaker reduced to its admission decision: ``open`` refuses."""

    def __init__(self, *, fallback: bool = False) -> None:
        self.open = False
        self.fallback = fallback

    def call(self, fn: Callable[[], Any]) -> Any:
        if self.open:
            if self.fallback:
                return "cached"
            raise Refused("open")
        return fn()

    async def acall(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        if self.open:
            raise Refused("open")
        return await fn()

    def run(self) -> str:  # no function argument: the breaker knows its dependency
        if self.open:
            raise Refused("open")
        raise ConnectionError("down")


def kinds(history: History) -> list[tuple[str, str | None, str | None]]:
    return [(e.kind, e.attrs.get("outcome"), e.attrs.get("error")) for e in history]


def boom() -> None:
    raise ConnectionError("down")


def test_admitted_failed_and_refused(timeline: tuple[VirtualClock, History]) -> None:
    clock, history = timeline
    gate = Gate()
    with watch_breaker(gate, name="db") as same:
        assert same is gate
        assert gate.call(lambda: "ok") == "ok"
        with pytest.raises(ConnectionError):
            gate.call(boom)
        clock.advance(1)
        gate.open = True
        with pytest.raises(Refused):
            gate.call(boom)
    assert kinds(history) == [("breaker.call", "ok", None),
                              ("breaker.call", "error", "ConnectionError"),
                              ("breaker.rejected", None, "Refused")]
    assert [e.source for e in history] == ["db"] * 3
    assert history[2].time == 1.0
    assert "call" not in vars(gate)


def test_a_fallback_without_calling_is_a_refusal(timeline: tuple[VirtualClock, History]) -> None:
    _, history = timeline
    gate = Gate(fallback=True)
    gate.open = True
    with watch_breaker(gate):
        assert gate.call(boom) == "cached"
    assert kinds(history) == [("breaker.rejected", None, None)]


def test_async_calls(timeline: tuple[VirtualClock, History]) -> None:
    _, history = timeline
    gate = Gate()

    async def fetch() -> str:
        return "ok"

    async def scenario() -> None:
        await gate.acall(fetch)
        gate.open = True
        with pytest.raises(Refused):
            await gate.acall(fetch)

    with watch_breaker(gate, call="acall"):
        asyncio.run(scenario())
    assert kinds(history) == [("breaker.call", "ok", None), ("breaker.rejected", None, "Refused")]


def test_without_the_function_the_exception_type_decides(
        timeline: tuple[VirtualClock, History]) -> None:
    _, history = timeline
    gate = Gate()
    with watch_breaker(gate, call="run", rejected=Refused):
        with pytest.raises(ConnectionError):
            gate.run()
        gate.open = True
        with pytest.raises(Refused):
            gate.run()
    assert kinds(history) == [("breaker.call", "error", "ConnectionError"),
                              ("breaker.rejected", None, "Refused")]
    with watch_breaker(gate, call="run"), pytest.raises(TypeError) as info:
        gate.run()
    assert str(info.value) == (
        "watch_breaker: Gate.run was called without a function to protect, so admission "
        "cannot be seen. Pass rejected= the exception the breaker raises when it refuses a "
        "call.")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError) as info:
        watch_breaker(Gate(), call="execute")
    assert str(info.value).endswith("has no method 'execute'. Pass call= the method that runs "
                                    "a protected call.")
    with pytest.raises(TypeError) as bad:
        watch_breaker(Gate(), rejected="Refused")  # type: ignore[arg-type]
    assert str(bad.value) == ("rejected='Refused' is not an exception class. Pass the "
                              "exception the breaker raises when it refuses a call.")
