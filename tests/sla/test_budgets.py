"""Budget.parse: every accepted form, and errors that name the wrong part."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience.sla._budgets import Budget, format_seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p95<200ms", ("p95", "<", 0.2, 0.95, None)),
        ("p(99.9)<=1s", ("p99.9", "<=", 1.0, 0.999, None)),
        ("p99 < 250 us", ("p99", "<", 250e-6, 0.99, None)),
        ("error_rate<1%", ("error_rate", "<", 0.01, None, None)),
        ("error_rate<=0.05", ("error_rate", "<=", 0.05, None, None)),
        ("throughput>50/s", ("throughput", ">", 50.0, None, None)),
        ("throughput>=3000/min", ("throughput", ">=", 50.0, None, None)),
        ("max<2s", ("max", "<", 2.0, None, None)),
        ("mean<500ns", ("mean", "<", 500e-9, None, None)),
        ("search: p50<20ms", ("p50", "<", 0.02, 0.5, "search")),
    ],
)
def test_parse_accepted_forms(text: str, expected: tuple[Any, ...]) -> None:
    metric, op, threshold, quantile, operation = expected
    budget = Budget.parse(text)
    assert (budget.metric, budget.op, budget.quantile, budget.operation) == (
        metric,
        op,
        quantile,
        operation,
    )
    assert budget.threshold == pytest.approx(threshold)
    assert budget.text == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95 200ms", r"has no comparison \(<, <=, >, >=\).*Write '\[operation:\]metric op value'"),
        ("p95<200", r"value '200' is not a latency\. Write a number with a unit: ns, us, ms or s"),
        ("p95<200 ms/s", r"is not a latency"),
        ("q95<1s", r"metric 'q95' is not known\. Use pNN or p\(NN\.N\), max, min, mean"),
        ("p100<1s", r"percentile 'p100' is out of range\. Use 0 < N < 100"),
        ("error_rate<1ms", r"value '1ms' is not a rate\. Write a percentage \(1%\) or a fraction"),
        ("error_rate<150%", r"above 100%"),
        ("throughput>50", r"value '50' is not a throughput\. Write operations per second"),
    ],
)
def test_parse_errors_say_which_part_and_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        Budget.parse(text)
    assert repr(text) in str(info.value)


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(TypeError, match="is not a string"):
        Budget.parse(200)  # type: ignore[arg-type]


@settings(max_examples=50)
@given(
    value=st.floats(0.001, 10_000, allow_nan=False),
    unit=st.sampled_from(["ns", "us", "ms", "s"]),
    op=st.sampled_from(["<", "<=", ">", ">="]),
)
def test_latency_thresholds_round_trip_units(value: float, unit: str, op: str) -> None:
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]
    budget = Budget.parse(f"max{op}{value!r}{unit}")
    assert budget.threshold == pytest.approx(value * scale)
    assert budget.op == op


def test_check_compares_and_refuses_unsupported_quantiles() -> None:
    budget = Budget.parse("p99<10ms")
    few = budget.check(0.001, samples=999, approximate=True)
    assert few.passed is None
    assert few.observed is None
    assert "not enough samples: p99 needs 1000, got 999" in few.reason
    ok = budget.check(0.009, samples=1000, approximate=True)
    assert ok.passed is True
    assert "±0.25%" in ok.reason
    bad = budget.check(0.011, samples=1000, approximate=True)
    assert bad.passed is False
    assert bad.reason.startswith("p99=11ms (±0.25%) breaks p99<10ms")
    assert Budget.parse("throughput>50/s").check(40.0, samples=10).passed is False
    assert Budget.parse("error_rate<1%").check(0.0, samples=10).passed is True


def test_format_seconds_picks_a_readable_unit() -> None:
    assert [format_seconds(v) for v in (2.5, 0.0125, 3e-5, 4e-9, 0.0)] == [
        "2.5s",
        "12.5ms",
        "30us",
        "4ns",
        "0ns",
    ]
