"""Shared test fixtures: hermetic pytester runs with an explicit ``-p resilience``."""

from __future__ import annotations

import contextlib
import importlib
import subprocess
from collections.abc import Generator

import pytest

from pytest_resilience._events import set_strict

# Every event this project emits must be of a declared kind with declared attributes.
set_strict(True)

# Each pytester test restores sys.modules to what it was when the fixture was created,
# dropping every module first imported in between. Extensions such as numpy, torch and
# chromadb cannot load twice in one process, so they are imported here, before any
# pytester snapshot, when installed.
for _name in ("numpy", "torch", "chromadb"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_name)


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """``pytester`` where only ``-p resilience`` (and what a test adds) is loaded.

    Autoloading is off so other installed plugins cannot change what a run sees; pass
    ``-p resilience`` (``RESILIENCE``) to each ``runpytest`` call.
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # an inner run is no xdist worker
    pytester.makeini("[pytest]\naddopts = -p resilience -p no:cacheprovider\n")
    return pytester


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A child process that failed under ``check=True`` shows what it printed: a bare
    ``CalledProcessError ... exit status 1`` hides the cause."""
    report = yield
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, subprocess.CalledProcessError):
        for name, data in (("stdout", error.stdout), ("stderr", error.stderr)):
            if data:
                text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
                report.sections.append((f"Captured {name} of the failed child process", text))
    return report
