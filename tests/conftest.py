"""Shared test fixtures: hermetic pytester runs with an explicit ``-p resilience``."""

from __future__ import annotations

import pytest


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """``pytester`` where only ``-p resilience`` (and what a test adds) is loaded.

    Autoloading is off so other installed plugins cannot change what a run sees; pass
    ``-p resilience`` (``RESILIENCE``) to each ``runpytest`` call.
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makeini("[pytest]\naddopts = -p resilience -p no:cacheprovider\n")
    return pytester
