"""The patch engine: what it stores, and that it puts back exactly what was there."""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Callable
from typing import Any

import pytest

from pytest_resilience._patching import intercept


class Recorder:
    """An interceptor that remembers each call's label and arguments."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[Any, ...]]] = []

    def run(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> Any:
        self.seen.append((label, args))
        return fn(*args, **kwargs)

    async def arun(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        self.seen.append((label, args))
        return await fn(*args, **kwargs)


class Base:
    def inherited(self, x: int) -> int:
        return x + 1


class Service(Base):
    factor = 10

    def method(self, x: int) -> int:
        return x * self.factor

    @staticmethod
    def static(x: int) -> int:
        return x - 1

    @classmethod
    def klass(cls, x: int) -> int:
        return x * cls.factor

    async def fetch(self, x: int) -> int:
        await asyncio.sleep(0)
        return x

    def __getitem__(self, key: int) -> int:
        return key * 2

    @property
    def prop(self) -> int:
        return 1


@pytest.mark.parametrize("name", ["method", "static", "klass", "inherited", "fetch",
                                  "__getitem__"])
def test_a_class_entry_is_restored_exactly(name: str) -> None:
    before = inspect.getattr_static(Service, name)
    own_before = name in vars(Service)
    patch = intercept(Service, name, Recorder(), label=f"Service.{name}")
    assert type(inspect.getattr_static(Service, name)) is type(before)  # same descriptor kind
    patch.restore()
    assert inspect.getattr_static(Service, name) is before
    assert (name in vars(Service)) is own_before
    patch.restore()  # twice is harmless
    assert inspect.getattr_static(Service, name) is before


def test_calls_through_each_descriptor_kind_reach_the_interceptor() -> None:
    recorder = Recorder()
    patches = [intercept(Service, n, recorder, label=n)
               for n in ("method", "static", "klass", "inherited")]
    try:
        s = Service()
        assert (s.method(2), Service.static(2), Service.klass(2), s.inherited(2)) == (20, 1, 20, 3)
    finally:
        for p in reversed(patches):
            p.restore()
    assert [label for label, _ in recorder.seen] == ["method", "static", "klass", "inherited"]
    assert [args for _, args in recorder.seen] == [(2,), (2,), (2,), (2,)]


def test_an_instance_method_is_shadowed_on_the_instance_only() -> None:
    recorder = Recorder()
    watched, other = Service(), Service()
    patch = intercept(watched, "method", recorder, label="m")
    assert "method" in vars(watched)
    assert (watched.method(1), other.method(1)) == (10, 10)
    patch.restore()
    assert "method" not in vars(watched)
    assert recorder.seen == [("m", (1,))]


def test_a_special_method_of_an_instance_intercepts_that_instance_only() -> None:
    recorder = Recorder()
    watched, other = Service(), Service()
    before = vars(Service)["__getitem__"]
    patch = intercept(watched, "__getitem__", recorder, label="get")
    assert (watched[3], other[4]) == (6, 8)
    patch.restore()
    assert vars(Service)["__getitem__"] is before
    assert recorder.seen == [("get", (3,))]


def test_async_methods_stay_coroutine_functions() -> None:
    recorder = Recorder()
    service = Service()
    patch = intercept(service, "fetch", recorder, label="fetch")
    try:
        assert inspect.iscoroutinefunction(service.fetch)
        assert asyncio.run(service.fetch(5)) == 5
    finally:
        patch.restore()
    assert recorder.seen == [("fetch", (5,))]


def test_a_module_function_is_restored() -> None:
    module = types.ModuleType("m")
    module.fn = lambda x: x  # type: ignore[attr-defined]
    original = module.fn  # type: ignore[attr-defined]
    patch = intercept(module, "fn", Recorder(), label="fn")
    assert module.fn is not original  # type: ignore[attr-defined]
    patch.restore()
    assert module.fn is original  # type: ignore[attr-defined]


def test_what_cannot_be_intercepted_is_named() -> None:
    with pytest.raises(TypeError) as info:
        intercept(Service, "prop", Recorder(), label="Service.prop")
    assert str(info.value) == "Service.prop is property, not a method. Watch a method or function."
    with pytest.raises(ValueError) as missing:
        intercept(Service(), "nope", Recorder(), label="x")
    assert str(missing.value) == ("Service object has no method 'nope'. Pass the name of one of "
                                  "its methods.")
    with pytest.raises(TypeError) as builtin:
        intercept(dict, "get", Recorder(), label="dict.get")
    assert str(builtin.value).startswith("dict.get cannot be replaced (")
