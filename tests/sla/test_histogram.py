"""LatencyHistogram: accuracy vs numpy, exact merges, fixed memory, refusal, wire form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience.sla._histogram import ALPHA, LatencyHistogram, min_samples

QS = (0.5, 0.9, 0.95, 0.99)


def _data(kind: str, seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "lognormal":
        return rng.lognormal(mean=-5.0, sigma=1.2, size=n)
    fast = rng.lognormal(mean=-7.0, sigma=0.3, size=n * 85 // 100)  # no ladder quantile on the gap
    slow = rng.lognormal(mean=-1.0, sigma=0.2, size=n - fast.size)
    return rng.permutation(np.concatenate([fast, slow]))


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["lognormal", "bimodal"]),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1_000, 20_000),
)
def test_quantiles_within_bound_of_exact(kind: str, seed: int, n: int) -> None:
    data = _data(kind, seed, n)
    hist = LatencyHistogram()
    hist.record_many(data)
    for q in QS:
        if n < min_samples(q):
            assert hist.quantile(q) is None
            continue
        got = hist.quantile(q)
        assert got is not None
        # Same definition as numpy's default (linear interpolation): within alpha.
        assert abs(got / np.quantile(data, q) - 1) <= ALPHA + 1e-12


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=300))
def test_single_record_matches_bulk_record(values: list[float]) -> None:
    one, bulk = LatencyHistogram(), LatencyHistogram()
    for v in values:
        one.record(v)
    bulk.record_many(values)
    assert one == bulk
    assert one.count == len(values)
    assert one.min == min(values)
    assert one.max == max(values)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.floats(1e-7, 100, allow_nan=False), max_size=100), min_size=3, max_size=3)
)
def test_merge_is_associative_and_equals_union(parts: list[list[float]]) -> None:
    a, b, c = (LatencyHistogram() for _ in range(3))
    for hist, values in zip((a, b, c), parts, strict=True):
        hist.record_many(values)

    def copy(h: LatencyHistogram) -> LatencyHistogram:
        return LatencyHistogram.from_dict(h.to_dict())

    left = copy(a).merge(copy(b)).merge(copy(c))
    right = copy(a).merge(copy(b).merge(copy(c)))
    union = LatencyHistogram()
    union.record_many([v for p in parts for v in p])
    assert left == right == union
    assert left.count == sum(map(len, parts))


def test_memory_is_fixed_whatever_the_sample_count() -> None:
    hist = LatencyHistogram()
    before = hist.memory_bytes()
    hist.record_many(np.random.default_rng(1).lognormal(-3, 3, 200_000))
    for v in (0.0, 1e-12, 1e9):
        hist.record(v)
    assert hist.memory_bytes() == before < 64 * 1024
    assert len(hist._counts) * 4 + 2048 * 8 == before  # 32-bit counters


def test_quantile_refused_below_ten_over_one_minus_q() -> None:
    assert (min_samples(0.5), min_samples(0.95), min_samples(0.99), min_samples(0.999)) == (
        20,
        200,
        1000,
        10000,
    )
    hist = LatencyHistogram()
    hist.record_many([0.01] * 999)
    assert hist.quantile(0.99) is None
    assert hist.quantile(0.95) == pytest.approx(0.01)
    hist.record(0.02)
    assert hist.quantile(0.99) == pytest.approx(0.01, rel=ALPHA)


def test_extremes_are_clamped_to_exact_min_and_max() -> None:
    hist = LatencyHistogram()
    hist.record_many([0.0] * 30)
    assert hist.quantile(0.5) == 0.0
    hist.record_many([5e7] * 100)  # beyond the highest bucket
    assert hist.quantile_unchecked(1.0) == 5e7
    assert hist.max == 5e7
    assert hist.min == 0.0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, -math.inf])
def test_bad_values_are_refused_with_the_accepted_range(bad: float) -> None:
    hist = LatencyHistogram()
    with pytest.raises(ValueError, match=r"is not a latency\. Pass a finite number of seconds"):
        hist.record(bad)
    with pytest.raises(ValueError, match="is not a latency"):
        hist.record_many([0.1, bad])
    assert hist.count == 0


def test_wire_form_is_plain_json_and_round_trips() -> None:
    hist = LatencyHistogram()
    hist.record_many(np.random.default_rng(3).lognormal(-4, 1, 5_000))
    wire = hist.to_dict()
    text = json.dumps(wire)
    assert len(text) < 16_000
    assert LatencyHistogram.from_dict(json.loads(text)) == hist
    assert all(type(x) is int for x in wire["index"] + wire["counts"])
    with pytest.raises(ValueError, match="is not supported"):
        LatencyHistogram.from_dict({**wire, "alpha": 0.01})


def test_merge_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="is not a LatencyHistogram"):
        LatencyHistogram().merge([1.0])  # type: ignore[arg-type]


def test_empty_histogram_reports_nothing() -> None:
    hist = LatencyHistogram()
    assert (hist.count, hist.min, hist.max, hist.mean, hist.quantile(0.5)) == (
        0,
        None,
        None,
        None,
        None,
    )
    assert hist.buckets() == []


@pytest.mark.parametrize(
    "change",
    [
        {"index": [-1], "counts": [1]},
        {"index": [10**6], "counts": [1]},
        {"counts": []},
        {"index": [7, 7], "counts": [1, 1]},
        {"index": [9, 8], "counts": [1, 1]},
    ],
)
def test_from_dict_refuses_malformed_buckets(change: dict[str, list[int]]) -> None:
    hist = LatencyHistogram()
    hist.record(0.01)
    with pytest.raises(ValueError, match="mismatched, out-of-range or unordered buckets"):
        LatencyHistogram.from_dict({**hist.to_dict(), **change})
