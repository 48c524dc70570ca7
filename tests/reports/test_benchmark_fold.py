"""pytest-benchmark results are folded into report.json; our quantiles go into its JSON."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]


def test_benchmark_json_gets_quantiles_and_report_gets_benchmarks(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is the peer folded in")
    pytester.makepyfile(
        """
        def test_sum(benchmark):
            benchmark.pedantic(sum, args=(range(100),), rounds=40, iterations=1)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "pytest_benchmark.plugin", "--benchmark-json=bench.json", "--resilience-report=out"
    )
    result.assert_outcomes(passed=1)
    bench = json.loads((pytester.path / "bench.json").read_text())
    extra = bench["benchmarks"][0]["extra_info"]["resilience"]
    assert extra["samples"] == 40
    assert extra["percentiles"]["p50"] is not None
    assert extra["percentiles"]["p99"] is None  # 40 rounds cannot support p99
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    (folded,) = report["benchmarks"]
    assert folded["fullname"].endswith("test_sum")
    assert folded["rounds"] == 40
    assert folded["percentiles"] == extra["percentiles"]
