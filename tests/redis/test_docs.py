"""The examples of docs/multiprocess.md run as written, against a real Redis."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "multiprocess.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
URL = "redis://127.0.0.1:6379/0"


def test_the_document_has_examples() -> None:
    assert len(BLOCKS) == 3


@pytest.mark.parametrize("block", [b for b in BLOCKS if "def test_" not in b])
def test_example_runs(block: str, redis_server: Any) -> None:
    redis_server.flush()
    assert URL in block
    exec(compile(block.replace(URL, redis_server.url), str(DOC), "exec"), {})


def test_the_test_example_passes(pytester: pytest.Pytester, redis_server: Any) -> None:
    (block,) = (b for b in BLOCKS if "def test_" in b)
    pytester.makepyfile(block)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
