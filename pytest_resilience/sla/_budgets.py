"""``Budget``: one service-level budget such as ``p95<200ms``, parsed and checked.

Grammar: ``[operation:]metric op value`` where metric is ``pNN``/``p(NN.N)``, ``max``,
``min``, ``mean``, ``error_rate``, ``throughput`` or ``amplification``; op is ``<``,
``<=``, ``>``, ``>=``; a latency value has a unit (``ns``, ``us``, ``ms``, ``s``), an error
rate is ``1%`` or ``0.01``, a throughput is ``50/s`` or ``3000/min``, an amplification
(calls per user request in the busiest layer, see ``check_amplification``) is ``1.2`` or
``1.2x``. This is the one budget grammar: ``checks.check_latency`` parses it too.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pytest_resilience import _validate
from pytest_resilience.sla._histogram import ALPHA, min_samples

__all__ = ["Budget", "BudgetVerdict", "format_seconds", "parse_budgets"]

_LATENCY_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_RATE_UNITS = {"s": 1.0, "min": 1 / 60}
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_SHAPE = re.compile(
    r"^\s*(?:(?P<scope>[^:<>=]+?)\s*:)?\s*(?P<metric>[A-Za-z_()0-9.]+)\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<value>\S.*?)\s*$"
)
_PERCENTILE = re.compile(r"^p(?:\((?P<a>[0-9]+(?:\.[0-9]+)?)\)|(?P<b>[0-9]+(?:\.[0-9]+)?))$")
_NUMBER = r"([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
_ACCEPTED = (
    "Write '[operation:]metric op value', e.g. 'p95<200ms', 'p(99.9)<=1s', "
    "'error_rate<1%', 'throughput>50/s', 'max<2s', 'search:mean<20ms', "
    "'amplification<1.2'."
)


@dataclass(frozen=True)
class BudgetVerdict:
    """The outcome of checking one budget: ``passed`` is ``None`` when it could not be."""

    budget: Budget
    observed: float | None
    passed: bool | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        """Plain builtins for reports and JUnit properties."""
        return {
            "budget": self.budget.text,
            "metric": self.budget.metric,
            "operation": self.budget.operation,
            "threshold": self.budget.threshold,
            "observed": self.observed,
            "passed": self.passed,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Budget:
    """A parsed budget; ``threshold`` is in seconds, a fraction, or operations per second."""

    text: str
    metric: str
    op: str
    threshold: float
    quantile: float | None = None
    operation: str | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        """Parse ``text``; a ``ValueError`` names the wrong part and what is accepted."""
        if not isinstance(text, str):
            raise TypeError(f"budget={_validate.show(text)} is not a string. {_ACCEPTED}")
        match = _SHAPE.match(text)
        if match is None:
            raise ValueError(
                f"budget={text!r} has no comparison (<, <=, >, >=) between a metric and "
                f"a value. {_ACCEPTED}"
            )
        scope, metric, op, raw = match.group("scope", "metric", "op", "value")
        quantile: float | None = None
        percentile = _PERCENTILE.match(metric)
        if percentile is not None:
            pct = float(percentile.group("a") or percentile.group("b"))
            if not 0 < pct < 100:
                raise ValueError(
                    f"budget={text!r}: percentile {metric!r} is out of range. Use 0 < N < 100, "
                    "e.g. p50, p95, p(99.9)."
                )
            quantile = round(pct / 100, 12)
            name = f"p{percentile.group('a') or percentile.group('b')}"
            threshold = _latency(text, raw)
        elif metric in ("max", "min", "mean"):
            name, threshold = metric, _latency(text, raw)
        elif metric == "error_rate":
            name, threshold = metric, _fraction(text, raw)
        elif metric == "throughput":
            name, threshold = metric, _rate(text, raw)
        elif metric == "amplification":
            name, threshold = metric, _ratio(text, raw)
        else:
            raise ValueError(
                f"budget={text!r}: metric {metric!r} is not known. Use pNN or p(NN.N), max, "
                "min, mean, error_rate, throughput or amplification."
            )
        return cls(
            text=text.strip(),
            metric=name,
            op=op,
            threshold=threshold,
            quantile=quantile,
            operation=scope.strip() if scope else None,
        )

    def check(
        self,
        observed: float | None,
        *,
        samples: int,
        approximate: bool = False,
        exact: bool = False,
    ) -> BudgetVerdict:
        """Compare an observed figure (``approximate``: within ``ALPHA``) to this budget.

        A percentile from a histogram needs ``min_samples`` samples; ``exact``: it was
        computed from every sample (a checker reading events), so any count will do.
        """
        if self.quantile is not None and not exact and samples < min_samples(self.quantile):
            return BudgetVerdict(
                self,
                None,
                None,
                f"not enough samples: {self.metric} needs {min_samples(self.quantile)}, "
                f"got {samples}",
            )
        if observed is None or (isinstance(observed, float) and math.isnan(observed)):
            return BudgetVerdict(
                self, None, None, f"no {self.metric} could be measured ({samples} samples)"
            )
        passed = self.holds(observed)
        shown = self.format(observed)
        bound = f" (±{ALPHA:.2%})" if approximate else ""
        verb = "within" if passed else "breaks"
        reason = f"{self.metric}={shown}{bound} {verb} {self.text} ({samples} samples)"
        return BudgetVerdict(self, observed, passed, reason)

    def holds(self, observed: float) -> bool:
        """Whether ``observed`` keeps this budget."""
        return _OPS[self.op](observed, self.threshold)

    def format(self, value: float) -> str:
        """``value`` in this budget's units, for people."""
        if self.metric == "error_rate":
            return f"{value * 100:.3g}%"
        if self.metric == "throughput":
            return f"{value:.4g}/s"
        if self.metric == "amplification":
            return f"{value:.3g}x"
        return format_seconds(value)


def format_seconds(value: float) -> str:
    """A latency in the largest unit that keeps it >= 1 (``1.25ms``)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.4g}{unit}"
    return f"{value / 1e-9:.4g}ns"


def _latency(text: str, raw: str) -> float:
    match = re.fullmatch(_NUMBER + r"\s*(ns|us|µs|ms|s)", raw)
    if match is None:
        raise ValueError(
            f"budget={text!r}: value {raw!r} is not a latency. Write a number with a unit: "
            "ns, us, ms or s (e.g. 200ms)."
        )
    return float(match.group(1)) * _LATENCY_UNITS[match.group(2)]


def _fraction(text: str, raw: str) -> float:
    match = re.fullmatch(_NUMBER + r"\s*(%?)", raw)
    if match is None:
        raise ValueError(
            f"budget={text!r}: value {raw!r} is not a rate. Write a percentage (1%) or a "
            "fraction (0.01)."
        )
    value = float(match.group(1)) / (100 if match.group(2) else 1)
    if value > 1:
        raise ValueError(f"budget={text!r}: error rate {raw!r} is above 100%. Write 0-100% or 0-1.")
    return value


def _rate(text: str, raw: str) -> float:
    match = re.fullmatch(_NUMBER + r"\s*/\s*(s|min)", raw)
    if match is None:
        raise ValueError(
            f"budget={text!r}: value {raw!r} is not a throughput. Write operations per "
            "second or minute: 50/s, 3000/min."
        )
    return float(match.group(1)) * _RATE_UNITS[match.group(2)]


def _ratio(text: str, raw: str) -> float:
    match = re.fullmatch(_NUMBER + r"\s*x?", raw)
    if match is None or float(match.group(1)) < 1:
        raise ValueError(
            f"budget={text!r}: value {raw!r} is not an amplification. Write calls per user "
            "request, 1 or more: 1.2 or 1.2x."
        )
    return float(match.group(1))


def parse_budgets(values: object, name: str = "budgets") -> list[Budget]:
    """A list of ``Budget`` objects or budget strings, parsed; a wrong one is named as
    ``<name>[<index>]`` with ``Budget.parse``'s message."""
    if isinstance(values, str | Budget):
        raise TypeError(f"{name}={_validate.show(values)} is a single budget. Pass a list of "
                        f"budgets, e.g. [{_validate.show(str(values))}].")
    _validate.check(isinstance(values, Iterable) and not isinstance(values, bytes | Mapping),
                    name, values, what="a list of budgets",
                    accepted="a list of budgets such as ['p95<200ms']", kind=TypeError)
    items: tuple[object, ...] = tuple(values)  # type: ignore[arg-type]
    parsed: list[Budget] = []
    for index, value in enumerate(items):
        if isinstance(value, Budget):
            parsed.append(value)
            continue
        try:
            parsed.append(Budget.parse(value))  # type: ignore[arg-type]  # refuses non-str
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}[{index}]: {exc}") from None
    return parsed
