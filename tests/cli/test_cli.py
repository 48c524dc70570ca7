"""The ``pytest-resilience`` command: subcommands, ``--help`` on every level, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience._cli import COMMANDS, main
from pytest_resilience.report._json import SCHEMA_VERSION, summarise
from pytest_resilience.sla._recorder import OperationStats

HELP_ARGV = [
    [], ["status"], ["report"], ["report", "render"], ["report", "compare"], ["compare"],
    ["chroma"], ["chroma", "backup"], ["migrate"], ["migrate", "up"],
]


def _report(tmp_path: Path, name: str, operation: str, seconds: float) -> Path:
    stats = OperationStats()
    stats.latency.record_many([seconds] * 1_000)
    tests = [{"nodeid": "t.py::test", "outcome": "passed", "duration": 1.0, "faults": {},
              "verdicts": [], "sla": None}]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "datetime": name, "seed": 1, "seed_source": "option",
        "environment": {"python": "3"}, "summary": summarise(tests), "tests": tests,
        "operations": [{"operation": operation, "variant": "baseline", **stats.to_dict()}],
        "lost_workers": [], "benchmarks": [],
    }
    path = tmp_path / name / "report.json"
    path.parent.mkdir()
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


@pytest.mark.parametrize("argv", HELP_ARGV, ids=lambda a: " ".join(a) or "top")
def test_help_on_every_level_exits_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(['pytest-resilience', *argv])}")


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_, text) in COMMANDS.items():
        assert f"  {name:<9} {text}" in out


def test_compare_help_shows_the_rule_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    # It crashed with "ValueError: unsupported format character" (the % in p99:+10%).
    assert main(["report", "compare", "--help"]) == 0
    assert "regression rule, e.g. p99:+10% (repeatable)" in " ".join(
        capsys.readouterr().out.split())


@pytest.mark.parametrize("argv", [[], ["launch"], ["report"], ["compare", "a.json"]],
                         ids=["none", "unknown", "report-alone", "compare-no-rule"])
def test_bad_usage_exits_2_with_a_usage_line(argv: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage: pytest-resilience" in capsys.readouterr().err


def test_compare_with_nothing_in_common_exits_1(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    old = _report(tmp_path, "old", "search", 0.010)
    new = _report(tmp_path, "new", "embed", 0.010)
    assert main(["compare", str(old), "--current", str(new), "--fail", "p99:+10%"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "nothing compared: no operation is in both sides (1 baseline / 1 current run(s), "
        "medians).")
    same = _report(tmp_path, "same", "search", 0.010)
    assert main(["compare", str(old), "--current", str(same), "--fail", "p99:+10%"]) == 0


def test_report_render_writes_markdown_and_html_with_a_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    old = _report(tmp_path, "old", "search", 0.010)
    new = _report(tmp_path, "new", "search", 0.030)
    assert main(["report", "render", str(new), "--compare", str(old),
                 "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "out" / "report.md"),
                                               str(tmp_path / "out" / "report.html")]
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Compared with the run of old" in html
    assert "<td>+200.0%</td><td>regression</td>" in html
    assert main(["report", "render", str(tmp_path / "missing.json")]) == 2


@pytest.mark.parametrize("launcher", ["script", "module"])
def test_the_command_and_python_m_are_one_cli(launcher: str) -> None:
    if launcher == "script":
        argv = [str(Path(sys.executable).with_name("pytest-resilience"))]
        prog = "pytest-resilience"
    else:
        argv = [sys.executable, "-m", "pytest_resilience"]
        prog = "python -m pytest_resilience"
    done = subprocess.run([*argv, "report", "compare", "--help"], capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {prog} report compare")
    bare = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert bare.returncode == 2
    assert bare.stderr.startswith(f"usage: {prog} [-h] COMMAND ...")
