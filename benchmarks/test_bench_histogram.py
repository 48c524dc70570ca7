"""LatencyHistogram vs hdrhistogram and ddsketch: single record, bulk record, merge, quantile,
and the worst quantile error (against numpy's exact quantiles) with the memory it takes.

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_histogram.py --benchmark-only``.
Targets: single-value record at most a quarter of hdrhistogram's cost, bulk record under
60 ns per value, merge of 64 histograms under 1 ms, worst quantile error at most 0.25%
in the 44 KiB the histogram has always taken.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from pytest_resilience.sla._histogram import LatencyHistogram

np = pytest.importorskip("numpy", reason="values are generated with numpy")

N = 10_000
VALUES = np.random.default_rng(7).lognormal(mean=-5.0, sigma=1.0, size=N)
PY_VALUES = VALUES.tolist()
MICROS = [max(1, int(v * 1e6)) for v in PY_VALUES]
BULK = np.random.default_rng(8).lognormal(mean=-5.0, sigma=1.0, size=1_000_000)


# -- single-value record (N values per round) -----------------------------------------------
@pytest.mark.benchmark(group="record-single")
def test_ours_record_single(benchmark: pytest.FixtureRequest) -> None:
    def run() -> LatencyHistogram:
        hist = LatencyHistogram()
        record = hist.record
        for v in PY_VALUES:
            record(v)
        _ = hist.count, hist.max  # fold the buffer: the whole cost is counted
        return hist

    assert benchmark(run).count == N  # type: ignore[operator]


@pytest.mark.benchmark(group="record-single")
def test_hdrhistogram_record_single(benchmark: pytest.FixtureRequest) -> None:
    hdrh = pytest.importorskip("hdrh.histogram", reason="peer: hdrhistogram")

    def run() -> object:
        hist = hdrh.HdrHistogram(1, 10**9, 3)
        record = hist.record_value
        for v in MICROS:
            record(v)
        return hist

    assert benchmark(run).get_total_count() == N  # type: ignore[operator]


@pytest.mark.benchmark(group="record-single")
def test_ddsketch_record_single(benchmark: pytest.FixtureRequest) -> None:
    ddsketch = pytest.importorskip("ddsketch", reason="peer: ddsketch")

    def run() -> object:
        sketch = ddsketch.DDSketch(relative_accuracy=0.005)
        add = sketch.add
        for v in PY_VALUES:
            add(v)
        return sketch

    assert benchmark(run).count == N  # type: ignore[operator]


# -- bulk record (1 M values per round) ------------------------------------------------------
@pytest.mark.benchmark(group="record-bulk-1M")
def test_ours_record_bulk(benchmark: pytest.FixtureRequest) -> None:
    def run() -> LatencyHistogram:
        hist = LatencyHistogram()
        hist.record_many(BULK)
        return hist

    assert benchmark(run).count == BULK.size  # type: ignore[operator]


@pytest.mark.benchmark(group="record-bulk-1M")
def test_exact_numpy_sort_bulk(benchmark: pytest.FixtureRequest) -> None:
    """Reference: keeping every value and sorting (what an exact engine pays)."""
    result = benchmark(lambda: np.sort(BULK))
    assert result.size == BULK.size  # type: ignore[attr-defined]


# -- merge 64 histograms of 10k values each --------------------------------------------------
def _ours_parts() -> list[LatencyHistogram]:
    parts = []
    rng = np.random.default_rng(9)
    for _ in range(64):
        hist = LatencyHistogram()
        hist.record_many(rng.lognormal(-5.0, 1.0, 10_000))
        parts.append(hist)
    return parts


@pytest.mark.benchmark(group="merge-64")
def test_ours_merge_64(benchmark: pytest.FixtureRequest) -> None:
    parts = _ours_parts()
    merged = benchmark(LatencyHistogram.merged, parts)
    assert merged.count == 640_000  # type: ignore[attr-defined]


@pytest.mark.benchmark(group="merge-64")
def test_ours_merge_64_from_wire(benchmark: pytest.FixtureRequest) -> None:
    """What the xdist controller does: decode 64 workeroutput dicts, then merge."""
    wires = [h.to_dict() for h in _ours_parts()]
    decode = LatencyHistogram.from_dict
    merged = benchmark(lambda: LatencyHistogram.merged(decode(w) for w in wires))
    assert merged.count == 640_000  # type: ignore[attr-defined]


@pytest.mark.benchmark(group="merge-64")
def test_hdrhistogram_merge_64(benchmark: pytest.FixtureRequest) -> None:
    hdrh = pytest.importorskip("hdrh.histogram", reason="peer: hdrhistogram")
    parts = []
    rng = np.random.default_rng(9)
    for _ in range(64):
        hist = hdrh.HdrHistogram(1, 10**9, 3)
        for v in rng.lognormal(-5.0, 1.0, 2_000):
            hist.record_value(max(1, int(v * 1e6)))
        parts.append(hist)

    def run() -> object:
        out = hdrh.HdrHistogram(1, 10**9, 3)
        for part in parts:
            out.add(part)
        return out

    assert benchmark(run).get_total_count() == 128_000  # type: ignore[operator]


@pytest.mark.benchmark(group="merge-64")
def test_ddsketch_merge_64(benchmark: pytest.FixtureRequest) -> None:
    ddsketch = pytest.importorskip("ddsketch", reason="peer: ddsketch")
    parts = []
    rng = np.random.default_rng(9)
    for _ in range(64):
        sketch = ddsketch.DDSketch(relative_accuracy=0.005)
        for v in rng.lognormal(-5.0, 1.0, 2_000):
            sketch.add(float(v))
        parts.append(sketch)

    def run() -> object:
        out = ddsketch.DDSketch(relative_accuracy=0.005)
        for part in parts:
            out.merge(part)
        return out

    assert benchmark(run).count == 128_000  # type: ignore[operator]


# -- quantile query ----------------------------------------------------------------------------
@pytest.mark.benchmark(group="quantile-p99")
def test_ours_quantile(benchmark: pytest.FixtureRequest) -> None:
    hist = LatencyHistogram()
    hist.record_many(BULK)
    assert benchmark(hist.quantile, 0.99) is not None


# -- worst quantile error (vs numpy's exact quantiles) ---------------------------------------
ERROR_QS = (0.5, 0.9, 0.95, 0.99, 0.999)


def _error_sets() -> dict[str, Any]:
    rng = np.random.default_rng(11)
    n = 20_000
    return {
        "lognormal": rng.lognormal(-5, 1.2, n),
        "bimodal": np.concatenate([rng.lognormal(-7, 0.3, n * 85 // 100),
                                   rng.lognormal(-1, 0.2, n * 15 // 100)]),
        "uniform": rng.uniform(0.001, 0.2, n),
        "exponential": rng.exponential(0.05, n),
        "pareto": (rng.pareto(1.5, n) + 1) * 1e-4,
    }


ERROR_SETS = _error_sets()
EXACT = {name: [float(np.quantile(data, q)) for q in ERROR_QS]
         for name, data in ERROR_SETS.items()}


def worst_error(benchmark: Any, build: Callable[[Any], Any],
                quantile: Callable[[Any, float], float]) -> None:
    """Build one sketch per data set (timed), then the worst relative error over
    ``ERROR_QS`` and the bytes the largest sketch held (tracemalloc) in ``extra_info``."""

    def run() -> list[Any]:
        return [build(data) for data in ERROR_SETS.values()]

    sketches = benchmark.pedantic(run, rounds=3, iterations=1)
    worst = max(abs(quantile(sketch, q) / exact - 1)
                for sketch, exacts in zip(sketches, EXACT.values(), strict=True)
                for q, exact in zip(ERROR_QS, exacts, strict=True))
    memory = 0
    for data in ERROR_SETS.values():
        tracemalloc.start()
        kept = build(data)
        memory = max(memory, tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
        del kept
    benchmark.extra_info.update(worst_error_percent=round(100 * worst, 4),
                                memory_bytes=memory)


@pytest.mark.benchmark(group="quantile-worst-error")
def test_ours_worst_quantile_error(benchmark: Any) -> None:
    def build(data: Any) -> LatencyHistogram:
        hist = LatencyHistogram()
        hist.record_many(data)
        return hist

    worst_error(benchmark, build, lambda hist, q: hist.quantile(q))
    benchmark.extra_info["fixed_memory_bytes"] = LatencyHistogram().memory_bytes()


@pytest.mark.benchmark(group="quantile-worst-error")
@pytest.mark.parametrize("accuracy", [0.0025, 0.005])
def test_ddsketch_worst_quantile_error(benchmark: Any, accuracy: float) -> None:
    ddsketch = pytest.importorskip("ddsketch", reason="peer: ddsketch")

    def build(data: Any) -> Any:
        sketch = ddsketch.DDSketch(relative_accuracy=accuracy)
        for v in data.tolist():
            sketch.add(v)
        return sketch

    worst_error(benchmark, build, lambda sketch, q: sketch.get_quantile_value(q))


@pytest.mark.benchmark(group="quantile-worst-error")
def test_hdrhistogram_worst_quantile_error(benchmark: Any) -> None:
    """3 significant digits, integer nanoseconds (hdrhistogram records integers)."""
    hdrh = pytest.importorskip("hdrh.histogram", reason="peer: hdrhistogram")

    def build(data: Any) -> Any:
        hist = hdrh.HdrHistogram(1, 10**12, 3)
        for v in (data * 1e9).astype(np.int64).tolist():
            hist.record_value(max(1, v))
        return hist

    worst_error(benchmark, build,
                lambda hist, q: hist.get_value_at_percentile(100 * q) / 1e9)
