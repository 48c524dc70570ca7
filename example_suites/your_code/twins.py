"""Test support: run a test on the correct and the buggy twin of some user code."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_resilience.checks import CheckFailed


def twins(correct: object, buggy: object, bug: str,
          raises: type[BaseException] = CheckFailed) -> list[Any]:
    """Parameters: the correct twin must pass; the buggy one must be caught (raising
    ``raises``, a failing checker by default), or the suite fails (``xfail(strict=True)``)."""
    return [pytest.param(correct, id="correct"),
            pytest.param(buggy, id="buggy", marks=pytest.mark.xfail(
                strict=True, raises=raises, reason=f"caught: {bug}"))]
