"""watch_calls: calls of functions and methods become call.start / call.end events."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable
from typing import Any

import pytest

from pytest_resilience import History, VirtualClock
from pytest_resilience.observability import correlation
from pytest_resilience.observe import watch_calls, watch_sleeps

UserModule = Callable[[str, str], types.ModuleType]

SOURCE = """
import time

def handle(order):
    return charge(order["amount"]) * 2

def charge(amount):
    if amount < 0:
        raise ValueError("negative")
    time.sleep(0.5)
    return amount

class Client:
    def get(self, key, *, retries=0):
        return {"key": key}

    async def aget(self, key):
        return key.upper()
"""


def test_a_function_is_watched_where_it_is_called(
        user_module: UserModule, timeline: tuple[VirtualClock, History]) -> None:
    clock, history = timeline
    mod = user_module("calls_user", SOURCE)
    original = mod.charge
    with watch_sleeps(clock), watch_calls(mod.handle, name="service"), \
            watch_calls(mod.charge, name="payments"):
        assert mod.handle({"amount": 3}) == 6
        with pytest.raises(ValueError):
            mod.handle({"amount": -1})
    assert mod.charge is original
    assert [(e.kind, e.source, e.time) for e in history if e.kind.startswith("call.")] == [
        ("call.start", "service", 0.0), ("call.start", "payments", 0.0),
        ("call.end", "payments", 0.5), ("call.end", "service", 0.5),
        ("call.start", "service", 0.5), ("call.start", "payments", 0.5),
        ("call.end", "payments", 0.5), ("call.end", "service", 0.5)]
    starts = history.select("call.start")
    ends = history.select("call.end")
    assert [e.attrs["parent"] for e in starts] == [None, starts[0].attrs["call"], None,
                                                   starts[2].attrs["call"]]
    assert starts[0].attrs == {"function": "handle", "args": "{'amount': 3}",
                               "call": starts[0].attrs["call"], "parent": None,
                               "correlation_id": None}
    assert [(e.source, e.attrs["outcome"], e.attrs["result"], e.attrs["error"],
             e.attrs["duration"]) for e in ends] == [
        ("payments", "ok", "int", None, 0.5), ("service", "ok", "int", None, 0.5),
        ("payments", "error", None, "ValueError", 0.0),
        ("service", "error", None, "ValueError", 0.0)]
    assert ends[1].attrs["value"] == "6"


def test_the_watched_function_is_given_for_code_that_holds_the_original(
        timeline: tuple[VirtualClock, History]) -> None:
    _, history = timeline

    def local(x: int) -> int:
        return x + 1

    with watch_calls(local) as watched:
        assert watched(1) == 2
    assert [e.attrs["function"] for e in history] == [
        "test_the_watched_function_is_given_for_code_that_holds_the_original.<locals>.local"] * 2


def test_methods_of_an_instance_sync_and_async(
        user_module: UserModule, timeline: tuple[VirtualClock, History]) -> None:
    _, history = timeline
    client = user_module("client_user", SOURCE).Client()
    with watch_calls(client, "get", "aget", name="client") as same:
        assert same is client
        assert client.get("a", retries=2) == {"key": "a"}
        assert asyncio.run(client.aget("b")) == "B"
    assert "get" not in vars(client)
    assert [(e.kind, e.attrs["function"], e.attrs.get("args")) for e in history] == [
        ("call.start", "Client.get", "'a', retries=2"), ("call.end", "Client.get", None),
        ("call.start", "Client.aget", "'b'"), ("call.end", "Client.aget", None)]


def test_a_correlation_id_is_carried(timeline: tuple[VirtualClock, History]) -> None:
    _, history = timeline

    def work() -> None:
        return None

    with watch_calls(work) as watched, correlation("checkout", correlation_id="req-7"):
        watched()
    assert history[0].attrs["correlation_id"] == "req-7"


def test_bad_targets_are_refused() -> None:
    with pytest.raises(TypeError) as info:
        watch_calls(object())
    assert str(info.value).startswith("watch_calls(<object object at 0x")
    assert str(info.value).endswith(") needs method names: pass watch_calls(obj, 'method', "
                                    "...) for an object, class or module, or a function.")
    with pytest.raises(TypeError) as named:
        watch_calls(len, "x")
    assert str(named.value) == ("watch_calls(<built-in function len>, ...): a function takes "
                                "no method names. Pass the function alone, or its module and "
                                "its name.")


def test_a_callable_object_is_watched_through_its_call(
        timeline: tuple[VirtualClock, History]) -> None:
    _, history = timeline

    class Handler:
        def __call__(self, x: int) -> int:
            return x

    handler: Any = Handler()
    with watch_calls(handler):
        assert handler(4) == 4
    assert history[0].attrs["function"].endswith("Handler.__call__")
