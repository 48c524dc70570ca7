"""Fixtures of the report tests: numpy up front, and a headless Chromium.

``pytester`` restores ``sys.modules`` after each inner run; numpy's C extension cannot
be loaded twice in one process, and the histogram imports numpy lazily on first flush.
``browser`` drives Chromium over the DevTools protocol (``_browser.py``); ``decode_png``
turns its screenshots into pixels (``_png.py``).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("numpy", reason="the SLA histogram folds samples with numpy")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def load_helper(name: str) -> ModuleType:
    """Import ``tests/reports/_<name>.py`` by path (the tests are not a package)."""
    path = Path(__file__).with_name(f"_{name}.py")
    spec = importlib.util.spec_from_file_location(f"resilience_report_tests_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium (skips with a reason where none is installed)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not on PATH (apt-get install chromium)")
    with load_helper("browser").Browser(CHROMIUM, tmp_path / "profile") as driver:
        yield driver


@pytest.fixture(scope="session")
def decode_png() -> Callable[[bytes], list[list[tuple[int, int, int]]]]:
    """PNG bytes -> rows of RGB pixels."""
    decode: Callable[[bytes], list[list[tuple[int, int, int]]]] = load_helper("png").decode
    return decode
