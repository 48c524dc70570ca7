"""LatencyHistogram at alpha 0.25%: the error bound, the memory it keeps, counters that
widen before they could overflow, and the wire format's version."""

from __future__ import annotations

import pytest

from pytest_resilience.sla._histogram import ALPHA, LatencyHistogram

np = pytest.importorskip("numpy", reason="numpy drives the bulk path and the exact oracle")

#: What the histogram took before (3,456 64-bit counters at alpha 0.5%, and the buffer).
MEMORY_BEFORE = (3456 + 2048) * 8


def _distributions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 50_000
    return {
        "lognormal": rng.lognormal(-5, 1.2, n),
        "bimodal": np.concatenate([rng.lognormal(-7, 0.3, n * 85 // 100),
                                   rng.lognormal(-1, 0.2, n * 15 // 100)]),
        "uniform": rng.uniform(0.001, 0.2, n),
        "exponential": rng.exponential(0.05, n),
        "pareto": (rng.pareto(1.5, n) + 1) * 1e-4,
    }


def test_every_quantile_is_within_a_quarter_percent_in_the_same_memory() -> None:
    assert ALPHA == 0.0025
    worst = 0.0
    for data in _distributions().values():
        hist = LatencyHistogram()
        hist.record_many(data)
        for q in (0.5, 0.9, 0.95, 0.99, 0.999):
            got = hist.quantile(q)
            assert got is not None
            worst = max(worst, abs(got / np.quantile(data, q) - 1))
        assert hist.memory_bytes() <= MEMORY_BEFORE
    assert worst <= ALPHA


def test_counters_widen_before_any_could_overflow() -> None:
    small = LatencyHistogram()
    small.record(0.01)
    wire = small.to_dict()
    big = {**wire, "count": 3_000_000_000, "counts": [3_000_000_000],
           "sum": 0.01 * 3_000_000_000}
    a, b = LatencyHistogram.from_dict(big), LatencyHistogram.from_dict(big)
    assert a.memory_bytes() > small.memory_bytes()  # 64-bit counters from here on
    merged = a.merge(b)
    assert merged.count == 6_000_000_000
    assert merged.to_dict()["counts"] == [6_000_000_000]
    assert merged.quantile(0.99) == pytest.approx(0.01, rel=ALPHA)
    narrow = LatencyHistogram()
    narrow.record(0.01)
    assert narrow.merge(LatencyHistogram.from_dict(big)).to_dict()["counts"] == [3_000_000_001]


def test_version_one_data_is_refused_with_the_reason() -> None:
    hist = LatencyHistogram()
    hist.record(0.01)
    old = {**hist.to_dict(), "v": 1, "alpha": 0.005}
    with pytest.raises(ValueError) as info:
        LatencyHistogram.from_dict(old)
    message = str(info.value)
    assert message.startswith("data={")
    assert message.endswith(
        " is not histogram data: v=1 alpha=0.005 is not supported (this version reads v=2, "
        "alpha=0.0025; version 1 buckets, alpha 0.005, do not map onto these). Pass data "
        "written by to_dict.")


def test_a_copy_or_a_pickle_counts_on_its_own() -> None:
    import copy
    import pickle

    hist = LatencyHistogram()
    hist.record_many([0.01] * 10)
    expected = LatencyHistogram()
    expected.record_many([0.01] * 10 + [0.02] * 10)
    for other in (copy.deepcopy(hist), pickle.loads(pickle.dumps(hist))):
        other.record_many([0.02] * 10)
        assert other == expected  # counts, count, min, max; the sum up to rounding
        assert other.to_dict()["counts"] == expected.to_dict()["counts"]
    assert hist.to_dict()["counts"] == [10]
