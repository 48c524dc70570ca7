"""`python -m pytest_resilience.report compare`: percentile rules, noise guard, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience.report.__main__ import main
from pytest_resilience.report._compare import Rule, compare_reports
from pytest_resilience.report._json import SCHEMA_VERSION
from pytest_resilience.sla._recorder import OperationStats


def _run(tmp_path: Path, name: str, p99: float, p50: float = 0.010) -> Path:
    stats = OperationStats()
    stats.latency.record_many([p50] * 980 + [p99] * 20)
    op = {"operation": "search", "variant": "baseline", **stats.to_dict()}
    report: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "operations": [op]}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def test_regression_beyond_rule_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _run(tmp_path, "base", 0.100)
    slow = _run(tmp_path, "slow", 0.150)
    assert main(["compare", str(base), "--current", str(slow), "--fail", "p99:+10%"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION search [baseline] p99:" in out
    assert "> +10%" in out


def test_within_rule_or_under_noise_floor_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _run(tmp_path, "base", 0.100)
    near = _run(tmp_path, "near", 0.105)
    assert main(["compare", str(base), "--current", str(near), "--fail", "p99:+10%"]) == 0
    tiny_base = _run(tmp_path, "tb", 0.0010, p50=0.0001)
    tiny = _run(tmp_path, "t", 0.0015, p50=0.0001)
    argv = ["compare", str(tiny_base), "--current", str(tiny), "--fail", "p99:+10%"]
    assert main(argv) == 1
    assert main([*argv, "--noise-floor", "1ms"]) == 0
    assert "no regression (1 baseline / 1 current run(s), medians)." in capsys.readouterr().out


def test_medians_of_repeated_runs_outvote_one_noisy_run(tmp_path: Path) -> None:
    base = [_run(tmp_path, f"b{i}", 0.100) for i in range(3)]
    current = [_run(tmp_path, "c0", 0.300), _run(tmp_path, "c1", 0.101), _run(tmp_path, "c2", 0.1)]
    argv = ["compare", *map(str, base), "--current", *map(str, current), "--fail", "p99:+10%"]
    assert main(argv) == 0
    assert main([*argv[:-3], str(current[0]), "--fail", "p99:+10%"]) == 1


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _run(tmp_path, "base", 0.1)
    assert main(["compare", str(base), "--current", str(base), "--fail", "p97x:+1%"]) == 2
    assert "rule='p97x:+1%' is not a comparison rule. Write FIELD:+N%" in capsys.readouterr().err
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema_version": 0, "operations": []}), encoding="utf-8")
    assert main(["compare", str(old), "--current", str(base), "--fail", "p99:+1%"]) == 2
    assert "schema_version=0" in capsys.readouterr().err


def test_missing_operation_is_a_note_not_a_pass(tmp_path: Path) -> None:
    base = json.loads(_run(tmp_path, "base", 0.1).read_text())
    regressions, notes = compare_reports([base], [{"operations": []}], [Rule.parse("p99:+5%")])
    assert regressions == []
    assert notes == ["search [baseline] p99: missing from the current run"]


def test_module_entry_point_runs(tmp_path: Path) -> None:
    base, slow = _run(tmp_path, "base", 0.1), _run(tmp_path, "slow", 0.2)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_resilience.report",
            "compare",
            str(base),
            "--current",
            str(slow),
            "--fail",
            "p99:+10%",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "1 regression(s)" in done.stdout
