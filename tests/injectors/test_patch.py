"""Every patch puts back exactly the object it replaced (descriptors included).

Regression for issue 14, defect 9: ``oom_at((cls, attr))`` restored ``getattr(cls,
attr)``, which turned a staticmethod into a plain function, so ``Model().load()`` got
the instance as its first argument even after an unfired fault.
"""

from __future__ import annotations

import socket
import sys
import types
from typing import Any

import pytest

from faults import Trigger
from faults._patch import patch, patched
from faults.memory import oom_at
from faults.network import connection_refused


class Model:
    """Every kind of callable class attribute."""

    @staticmethod
    def load(path: str = "weights.bin") -> str:
        return f"loaded {path}"

    @classmethod
    def build(cls) -> str:
        return f"built {cls.__name__}"

    def run(self, x: int) -> int:
        return x + 1


class Child(Model):
    """Inherits every attribute of ``Model``."""


def _namespace(cls: type) -> dict[str, Any]:
    return dict(vars(cls))


@pytest.mark.parametrize("owner", [Model, Child])
def test_oom_at_keeps_and_restores_staticmethods_classmethods_and_methods(owner: type) -> None:
    before = _namespace(owner)
    for attribute in ("load", "build", "run"):
        with oom_at((owner, attribute), trigger=Trigger.nth(1000)):
            assert owner().load() == "loaded weights.bin"
            assert owner.load("x") == "loaded x"
            assert owner().build() == f"built {owner.__name__}"
            assert owner().run(1) == 2
        assert _namespace(owner) == before  # the same objects, nothing left behind
    assert owner().load() == "loaded weights.bin"
    assert owner.build() == f"built {owner.__name__}"


def test_oom_at_fires_through_a_staticmethod() -> None:
    with pytest.raises(MemoryError, match="simulated out of memory"), oom_at((Model, "load")):
        Model().load()
    assert Model().load() == "loaded weights.bin"


def test_oom_at_on_an_instance_patches_only_that_instance() -> None:
    model = Model()
    with pytest.raises(MemoryError), oom_at((model, "run")):
        model.run(1)
    assert "run" not in vars(model)
    assert model.run(1) == 2


def test_oom_at_refuses_what_it_cannot_patch() -> None:
    with pytest.raises(ValueError) as missing, oom_at((Model, "nope")):
        pass
    assert str(missing.value) == ("target=(<class 'tests.injectors.test_patch.Model'>, 'nope') "
                                  "names no attribute 'nope'. Pass an existing function or "
                                  "method.")
    with pytest.raises(TypeError, match=r"^target=\(<class 'dict'>, 'get'\) cannot be "
                                        r"patched \(cannot set 'get' attribute of immutable "
                                        r"type 'dict'\)\."), oom_at((dict, "get")):
        pass


def test_socket_faults_leave_socket_socket_as_it_was() -> None:
    before = _namespace(socket.socket)
    functions = (socket.getaddrinfo, socket.gethostbyname, socket.gethostbyname_ex)
    with connection_refused("127.0.0.1", 9):
        assert "connect" in vars(socket.socket)
    assert _namespace(socket.socket) == before  # connect is inherited from _socket.socket
    assert (socket.getaddrinfo, socket.gethostbyname, socket.gethostbyname_ex) == functions


def test_a_lazy_module_attribute_is_not_frozen_by_the_restore() -> None:
    module = types.ModuleType("lazy_example")
    calls: list[str] = []

    def lazy(name: str) -> object:
        calls.append(name)
        if name == "value":
            return len(calls)
        raise AttributeError(name)

    module.__getattr__ = lazy  # type: ignore[method-assign]
    sys.modules["lazy_example"] = module
    try:
        with patched(module, "value", "patched"):
            assert module.value == "patched"
        assert "value" not in vars(module)
        assert module.value == 1  # computed again, not a frozen copy
    finally:
        del sys.modules["lazy_example"]


class _Strict:
    """An object whose ``__setattr__`` refuses everything (like chromadb's models)."""

    __slots__ = ("__dict__",)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{name} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{name} is read-only")

    def write(self) -> str:
        return "original"


def test_raw_patches_bypass_a_strict_setattr_and_undo_cleanly() -> None:
    strict = _Strict()
    with pytest.raises(TypeError, match="cannot be patched"):
        patch(strict, "write", lambda: "x")
    applied = patch(strict, "write", lambda: "patched", raw=True)
    assert strict.write() == "patched"
    applied.restore()
    applied.restore()  # idempotent
    assert strict.write() == "original"
    assert "write" not in vars(strict)
