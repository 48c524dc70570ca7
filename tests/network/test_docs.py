"""Every Python example in docs/network.md runs: scripts as they are, tests under pytest."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "network.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
NEEDS_H11 = importlib.util.find_spec("h11") is None


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("code", [b for b in BLOCKS if "def test_" not in b],
                         ids=lambda code: code.split("\n", 3)[-2][:40])
def test_a_script_example_runs(code: str) -> None:
    if "faults import http" in code and NEEDS_H11:
        pytest.skip("faults.http needs h11 (the http extra)")
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_example"})


@pytest.mark.parametrize("code", [b for b in BLOCKS if "def test_" in b],
                         ids=lambda code: re.findall(r"def (test_\w+)", code)[0])
def test_a_test_example_passes(pytester: pytest.Pytester, code: str) -> None:
    pytester.makepyfile(code)
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(passed=len(re.findall(r"^def test_", code, re.M)))
