"""pytest-xdist: every worker gets the controller's seed; records reach the controller."""

from __future__ import annotations

import json

import pytest


def test_n2_run_shares_the_seed_and_collects_every_record(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import faults as f

        @pytest.mark.parametrize("i", range(6))
        def test_many(i, faults, resilience_seed):
            print("SEED", i, resilience_seed)
            faults.inject(f"p{i}")
            with pytest.raises(Exception):
                f.failpoint(f"p{i}")
        """
    )
    serial = pytester.runpytest("--resilience-seed=21", "--resilience-report=serial")
    serial.assert_outcomes(passed=6)
    parallel = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "--resilience-seed=21", "--resilience-report=par"
    )
    parallel.assert_outcomes(passed=6)
    parallel.stdout.fnmatch_lines([
        "*resilience: seed=21*",
        "tests using the harness: 6, faults fired: 6 (failpoint 6), events recorded: 18",
    ])
    a = json.loads((pytester.path / "serial" / "report.json").read_text())
    b = json.loads((pytester.path / "par" / "report.json").read_text())
    assert [t["seed"] for t in a["tests"]] == [t["seed"] for t in b["tests"]]
    assert len(b["tests"]) == 6
