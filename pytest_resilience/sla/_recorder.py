"""``SLARecorder``: the engine behind the ``sla`` fixture.

Operations are timed on a ``Clock`` (the real one by default, a ``VirtualClock`` to
measure latency injected in virtual time exactly). Successful operations feed a
``LatencyHistogram`` per operation; failed ones count toward the error rate. Budgets
are checked against each named operation, or against all operations together when the
budget names none.

With a ``history``, each sample is filed as ``faults`` when a fault was active at any
moment while it was taken (from the history's ``fault.armed`` / ``fault.disarmed``
events), else ``baseline``; budgets judge both together.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pytest_resilience._clock import Clock, SystemClock
from pytest_resilience._errors import BudgetExceeded
from pytest_resilience._events import History, emit
from pytest_resilience.kinds import SLA_SAMPLE
from pytest_resilience.sla._budgets import Budget, Verdict
from pytest_resilience.sla._histogram import ALPHA, LatencyHistogram

__all__ = ["ALL_OPERATIONS", "Measurement", "OperationStats", "SLARecorder", "summarise"]

#: The name under which all operations together are reported.
ALL_OPERATIONS = "*"
#: The percentile ladder every summary shows.
LADDER = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p99.9", 0.999))
#: Samples kept for a timeline: past this many, every other one is dropped (evenly thinned).
SAMPLE_LIMIT = 2000
BASELINE, FAULTS = "baseline", "faults"


@dataclass
class OperationStats:
    """Latencies of successful calls, the error count, and the span they covered."""

    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    errors: int = 0
    first_start: float = math.inf
    last_end: float = -math.inf

    @property
    def calls(self) -> int:
        """Successful plus failed calls."""
        return self.latency.count + self.errors

    def add(self, seconds: float, ok: bool, end: float) -> None:
        """Count one call that took ``seconds`` and ended at ``end``."""
        if ok:
            self.latency.record(seconds)
        else:
            if not 0.0 <= seconds < math.inf:
                raise ValueError(
                    f"seconds={seconds!r} is not a latency. Pass a finite number >= 0."
                )
            self.errors += 1
        self.first_start = min(self.first_start, end - seconds)
        self.last_end = max(self.last_end, end)

    def merge(self, other: OperationStats) -> OperationStats:
        """Add ``other`` into this (exact); returns ``self``."""
        self.latency.merge(other.latency)
        self.errors += other.errors
        self.first_start = min(self.first_start, other.first_start)
        self.last_end = max(self.last_end, other.last_end)
        return self

    @property
    def error_rate(self) -> float | None:
        """Failed calls / all calls, or ``None`` with no calls."""
        return self.errors / self.calls if self.calls else None

    @property
    def throughput(self) -> float | None:
        """Calls per second over the span from the first start to the last end."""
        span = self.last_end - self.first_start
        if not self.calls or span <= 0 or math.isinf(span):
            return None
        return self.calls / span

    def observe(self, budget: Budget) -> tuple[float | None, bool]:
        """The figure ``budget`` is about, and whether it is approximate (histogram)."""
        if budget.quantile is not None:
            return self.latency.quantile(budget.quantile), True
        if budget.metric == "error_rate":
            return self.error_rate, False
        if budget.metric == "throughput":
            return self.throughput, False
        if budget.metric == "mean":
            return self.latency.mean, False
        return (self.latency.max if budget.metric == "max" else self.latency.min), False

    def to_dict(self, *, histogram: bool = True) -> dict[str, Any]:
        """A summary as plain builtins (the histogram too unless ``histogram=False``)."""
        latency = self.latency
        out: dict[str, Any] = {
            "count": latency.count,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "throughput": self.throughput,
            "duration": (self.last_end - self.first_start) if self.calls else None,
            "min": latency.min,
            "max": latency.max,
            "mean": latency.mean,
            "percentiles": {name: latency.quantile(q) for name, q in LADDER},
            "alpha": ALPHA,
        }
        if histogram:
            out["histogram"] = latency.to_dict()
            out["span"] = [self.first_start, self.last_end] if self.calls else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperationStats:
        """Inverse of ``to_dict`` (which must include the histogram)."""
        stats = cls(latency=LatencyHistogram.from_dict(data["histogram"]))
        stats.errors = int(data["errors"])
        if data.get("span"):
            stats.first_start, stats.last_end = (float(x) for x in data["span"])
        return stats


def summarise(operations: dict[str, OperationStats]) -> OperationStats:
    """All operations merged into one."""
    total = OperationStats()
    for stats in operations.values():
        total.merge(stats)
    return total


class Measurement:
    """Times one operation; a context manager, sync (``with``) or async (``async with``).

    An exception inside the block counts as an error and propagates; ``mark_error()``
    counts the call as failed without raising.
    """

    __slots__ = ("_armed", "_ok", "_recorder", "_start", "operation", "seconds")

    def __init__(self, recorder: SLARecorder, operation: str, start: float | None) -> None:
        self._recorder = recorder
        self.operation = operation
        self._start = start
        self._ok = True
        self._armed = recorder._fault_marker()
        self.seconds: float | None = None

    def mark_error(self) -> None:
        """Count this call as failed even though nothing was raised."""
        self._ok = False

    def __enter__(self) -> Measurement:
        if self._start is None:
            self._start = self._recorder.clock.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end = self._recorder.clock.monotonic()
        assert self._start is not None
        self.seconds = max(0.0, end - self._start)
        ok = self._ok and exc_type is None
        self._recorder._add(self.operation, self.seconds, ok, end, self._armed)

    async def __aenter__(self) -> Measurement:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class SLARecorder:
    """Collects operation timings and checks budgets against them.

    ``budgets`` are strings (``"p95<200ms"``) or ``Budget`` objects. With
    ``emit_samples=True`` every call is also written as an ``sla.sample`` event. With a
    ``history`` (the test's), samples taken while a fault was active are filed under
    ``faults`` in ``variants``, the others under ``baseline``.
    """

    def __init__(
        self,
        *budgets: str | Budget,
        clock: Clock | None = None,
        name: str | None = None,
        emit_samples: bool = False,
        history: History | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.name = name
        self.budgets: list[Budget] = []
        self.emit_samples = emit_samples
        self.history = history
        self.operations: dict[str, OperationStats] = {}
        #: (operation, "baseline" | "faults") -> stats of the samples of that variant.
        self.variants: dict[tuple[str, str], OperationStats] = {}
        #: [end time (on the history's clock), operation, seconds, ok, faults] of every
        #: ``stride``-th sample.
        self.samples: list[list[Any]] = []
        self._stride = 1
        self._seen = 0
        self.add_budgets(*budgets)

    def add_budgets(self, *budgets: str | Budget) -> None:
        """Add budgets (parsed now, so a typo fails at once)."""
        for budget in budgets:
            self.budgets.append(budget if isinstance(budget, Budget) else Budget.parse(budget))

    # -- recording -------------------------------------------------------------------------
    def measure(self, operation: str) -> Measurement:
        """``with sla.measure("search"):`` (or ``async with``) times one call."""
        return Measurement(self, _check_name(operation), None)

    def record(self, operation: str, seconds: float, *, ok: bool = True) -> None:
        """Count one call of ``operation`` that took ``seconds`` (ending now)."""
        self._add(_check_name(operation), float(seconds), bool(ok), self.clock.monotonic(),
                  self._fault_marker())

    def open_loop(self, operation: str, *, rate: float, count: int) -> Iterator[Measurement]:
        """``count`` calls scheduled ``rate`` per second, timed from their intended start.

        Like wrk2: a call that starts late because an earlier one stalled is charged the
        wait, so a stall shows in the tail instead of being omitted::

            for call in sla.open_loop("search", rate=100, count=1000):
                with call:
                    search()
        """
        interval = _check_schedule(rate, count)
        operation = _check_name(operation)
        origin = self.clock.monotonic()
        for i in range(count):
            intended = origin + i * interval
            wait = intended - self.clock.monotonic()
            if wait > 0:
                self.clock.sleep(wait)
            yield Measurement(self, operation, intended)

    async def aopen_loop(
        self, operation: str, *, rate: float, count: int
    ) -> AsyncIterator[Measurement]:
        """Async ``open_loop``: ``async for call in sla.aopen_loop(...): async with call:``."""
        interval = _check_schedule(rate, count)
        operation = _check_name(operation)
        origin = self.clock.monotonic()
        for i in range(count):
            intended = origin + i * interval
            wait = intended - self.clock.monotonic()
            if wait > 0:
                await self.clock.asleep(wait)
            yield Measurement(self, operation, intended)

    def _fault_marker(self) -> tuple[bool, int]:
        """Whether a fault is active now, and how many were armed so far."""
        history = self.history
        if history is None:
            return False, 0
        return bool(history.faults_active()), history.armed_count()

    def _add(self, operation: str, seconds: float, ok: bool, end: float,
             at_start: tuple[bool, int]) -> None:
        stats = self.operations.get(operation)
        if stats is None:
            stats = self.operations[operation] = OperationStats()
        stats.add(seconds, ok, end)
        now = self._fault_marker()
        faults = at_start[0] or now[0] or now[1] != at_start[1]
        key = (operation, FAULTS if faults else BASELINE)
        variant = self.variants.get(key)
        if variant is None:
            variant = self.variants[key] = OperationStats()
        variant.add(seconds, ok, end)
        self._keep_sample([self._timeline(end), operation, seconds, ok, faults])
        if self.emit_samples:
            emit(SLA_SAMPLE, operation, self.clock, history=self.history, seconds=seconds,
                 ok=ok, faults=faults)

    def _timeline(self, end: float) -> float:
        """``end`` on the history's time line (its own clock, when it has one), so samples
        and fault windows share one axis."""
        history = self.history
        if history is None or history.clock is None or history.clock is self.clock:
            return end
        return history.clock.monotonic()

    def _keep_sample(self, row: list[Any]) -> None:
        self._seen += 1
        if (self._seen - 1) % self._stride:
            return
        self.samples.append(row)
        if len(self.samples) >= SAMPLE_LIMIT:
            del self.samples[1::2]
            self._stride *= 2

    # -- checking --------------------------------------------------------------------------
    def stats(self, operation: str | None = None) -> OperationStats:
        """One operation's stats, or all operations merged when ``operation`` is None."""
        if operation is None:
            return summarise(self.operations)
        return self.operations.get(operation, OperationStats())

    def check(self) -> list[Verdict]:
        """Every budget's verdict (``passed`` None: could not be measured)."""
        verdicts = []
        for budget in self.budgets:
            stats = self.stats(budget.operation)
            observed, approximate = stats.observe(budget)
            samples = stats.latency.count if budget.quantile is not None else stats.calls
            verdicts.append(budget.check(observed, samples=samples, approximate=approximate))
        return verdicts

    def verify(self) -> list[Verdict]:
        """Check every budget; raise ``BudgetExceeded`` naming each one not met."""
        __tracebackhide__ = True
        verdicts = self.check()
        failed = [v for v in verdicts if v.passed is not True]
        if failed:
            first = failed[0]
            lines = "\n".join(f"  {_scope(v.budget)}{v.reason}" for v in failed)
            raise BudgetExceeded(
                f"{len(failed)} of {len(verdicts)} SLA budget(s) not met:\n{lines}",
                budget=first.budget.text,
                observed=first.observed,
            )
        return verdicts

    def to_dict(self, *, histograms: bool = False) -> dict[str, Any]:
        """Budgets, verdicts, per-operation summaries by variant, and the kept samples,
        as plain builtins."""
        operations: dict[str, dict[str, Any]] = {}
        for (name, variant), stats in sorted(self.variants.items()):
            operations.setdefault(name, {})[variant] = stats.to_dict(histogram=histograms)
        return {
            "name": self.name,
            "budgets": [v.to_dict() for v in self.check()],
            "operations": operations,
            "samples": list(self.samples),
        }


def _scope(budget: Budget) -> str:
    return f"[{budget.operation}] " if budget.operation else ""


def _check_name(operation: str) -> str:
    if not isinstance(operation, str) or not operation or operation == ALL_OPERATIONS:
        raise ValueError(
            f"operation={operation!r} is not an operation name. Pass a non-empty string "
            f"other than {ALL_OPERATIONS!r}, e.g. 'search'."
        )
    return operation


def _check_schedule(rate: float, count: int) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf:
        raise ValueError(f"rate={rate!r} is not a rate. Pass calls per second > 0.")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count={count!r} is not a call count. Pass an integer >= 0.")
    return 1.0 / rate
