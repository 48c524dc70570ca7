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
from pytest_resilience.report._json import SCHEMA_VERSION, load_report
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


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda r: compare_reports([], [r], []), ValueError,
     "baselines=[] is not a list of reports. Pass a non-empty list of reports, each read by "
     "load_report(path)."),
    (lambda r: compare_reports([r], True, []), TypeError,
     "currents=True is not a list of reports. Pass a non-empty list of reports, each read by "
     "load_report(path)."),
    (lambda r: compare_reports([r], [r], "p99:+10%"), TypeError,
     "rules='p99:+10%' is not a list of rules. Pass a list of Rule objects, e.g. "
     "[Rule.parse('p99:+10%')]."),
    (lambda r: compare_reports([r], [r], [], noise_floor=-1), ValueError,
     "noise_floor=-1 is not a noise floor. Pass a finite number >= 0."),
])
def test_compare_reports_names_a_wrong_argument(call: Any, error: type[Exception],
                                                message: str) -> None:
    report = {"schema_version": SCHEMA_VERSION, "operations": []}
    with pytest.raises(error) as info:
        call(report)
    assert str(info.value) == message


def test_load_report_names_a_wrong_path_or_document(tmp_path: Path) -> None:
    with pytest.raises(TypeError) as wrong_type:
        load_report(None)  # type: ignore[arg-type]
    assert str(wrong_type.value) == ("path=None is not a report path. Pass the path of a "
                                     "report.json file.")
    with pytest.raises(ValueError) as directory:
        load_report(tmp_path)
    assert str(directory.value) == (f"path={str(tmp_path)!r} is not a report.json. Pass the "
                                    "path of a report.json file, not a directory.")
    listed = tmp_path / "list.json"
    listed.write_text("[1]", encoding="utf-8")
    with pytest.raises(ValueError) as not_object:
        load_report(listed)
    assert str(not_object.value) == (f"path={str(listed)!r} is not a report.json: it holds a "
                                     "JSON list, not an object. Pass a report.json written "
                                     "by --resilience-report.")
