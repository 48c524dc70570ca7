"""Helpers for the observer tests: user modules written to disk, as a project's are."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_resilience import History, VirtualClock, recording


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[Callable[[str, str], types.ModuleType]]:
    """``user_module(name, source)``: a module imported from a file, as plain user code."""
    made: list[str] = []

    def make(name: str, source: str) -> types.ModuleType:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        made.append(name)
        spec.loader.exec_module(module)
        return module

    yield make
    for name in made:
        sys.modules.pop(name, None)


@pytest.fixture
def timeline() -> Iterator[tuple[VirtualClock, History]]:
    """A virtual clock and an active history stamped by it."""
    clock = VirtualClock()
    with recording(History(clock=clock)) as history:
        yield clock, history
