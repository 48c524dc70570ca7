"""A test whose child process fails under ``check=True`` shows the child's output (the
hook in ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def test_a_failed_child_process_shows_its_stderr(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((Path(__file__).parents[1] / "conftest.py").read_text())
    pytester.makepyfile(
        """
        import subprocess, sys

        def test_child():
            subprocess.run([sys.executable, "-c", "import sys; sys.exit('the real cause')"],
                           capture_output=True, text=True, check=True)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Captured stderr of the failed child process*",
                                 "the real cause"])
