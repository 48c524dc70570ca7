"""``SLARecorder``: the engine behind the ``sla`` fixture.

Operations are timed on a ``Clock`` (the real one by default, a ``VirtualClock`` to
measure latency injected in virtual time exactly). Successful operations feed a
``LatencyHistogram`` per operation; failed ones count toward the error rate. Budgets
are checked against each named operation, or against all operations together when the
budget names none. An ``amplification`` budget is judged on the history's watched calls
(its operation, if named, is the layer).

With a ``history``, each sample is filed as ``faults`` when a fault was active at any
moment while it was taken (from the history's ``fault.armed`` / ``fault.disarmed``
events), else ``baseline``; budgets judge both together.

With ``abort=``, a measurement under a ``max<`` budget is stopped once it has run that
long: synchronous ones by the guard ``abort(operation, budget)`` returns (the plugin's
real-time watchdog), ``async`` ones by ``asyncio.timeout``. The stopped call is recorded
with the time it ran, and ``BudgetExceeded`` is raised from the ``with`` block.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pytest_resilience import _validate
from pytest_resilience._calltree import requests
from pytest_resilience._clock import Clock
from pytest_resilience._errors import BudgetExceeded
from pytest_resilience._events import History, active_history, emit
from pytest_resilience.kinds import SLA_SAMPLE
from pytest_resilience.sla._budgets import Budget, BudgetVerdict, format_seconds, parse_budgets
from pytest_resilience.sla._histogram import ALPHA, LatencyHistogram

__all__ = ["ALL_OPERATIONS", "Abort", "Measurement", "OperationStats", "SLARecorder",
           "overrun", "summarise"]

#: The name under which all operations together are reported.
ALL_OPERATIONS = "*"
#: Makes the guard that stops a synchronous measurement past its ``max<`` budget.
Abort = Callable[[str, "Budget"], AbstractContextManager[object]]
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
        with _validate.parsing("data", data, "operation stats", "data written by to_dict"):
            stats = cls(latency=LatencyHistogram.from_dict(data["histogram"]))
            stats.errors = _validate.count(data["errors"], "errors", low=0)
            if data.get("span"):
                first, last = data["span"]
                stats.first_start = _validate.number(first, "span")
                stats.last_end = _validate.number(last, "span")
            return stats


def summarise(operations: dict[str, OperationStats]) -> OperationStats:
    """All operations merged into one."""
    total = OperationStats()
    for stats in operations.values():
        total.merge(stats)
    return total


def overrun(operation: str, budget: Budget) -> BudgetExceeded:
    """The error a measurement stopped at its ``max<`` budget raises."""
    return BudgetExceeded(
        f"{operation!r} was stopped after {format_seconds(budget.threshold)}: it ran past the "
        f"{budget.text} budget (the rest of the test body did not run).",
        budget=budget.text, observed=budget.threshold)


class Measurement:
    """Times one operation; a context manager, sync (``with``) or async (``async with``).

    An exception inside the block counts as an error and propagates; ``mark_error()``
    counts the call as failed without raising.
    """

    __slots__ = ("_armed", "_ok", "_recorder", "_start", "_stop", "_timeout", "operation",
                 "seconds")

    def __init__(self, recorder: SLARecorder, operation: str, start: float | None) -> None:
        self._recorder = recorder
        self.operation = operation
        self._start = start
        self._ok = True
        self._armed = recorder._fault_marker()
        self._stop: AbstractContextManager[object] | None = None
        self._timeout: asyncio.Timeout | None = None
        self.seconds: float | None = None

    def mark_error(self) -> None:
        """Count this call as failed even though nothing was raised."""
        self._ok = False

    def __enter__(self) -> Measurement:
        if self._start is None:
            self._start = self._recorder.clock.monotonic()
        budget = self._recorder._cap(self.operation)
        if budget is not None and self._recorder.abort is not None:
            self._stop = self._recorder.abort(self.operation, budget)
            self._stop.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stopped: BudgetExceeded | None = None
        stop, self._stop = self._stop, None
        if stop is not None:
            try:
                stop.__exit__(exc_type, exc, tb)
            except BudgetExceeded as over:
                stopped = over
        self._finish(exc_type is None or stopped is not None)
        if stopped is not None:
            raise stopped

    def _finish(self, completed: bool) -> None:
        end = self._recorder.clock.monotonic()
        assert self._start is not None
        self.seconds = max(0.0, end - self._start)
        self._recorder._add(self.operation, self.seconds, self._ok and completed, end,
                            self._armed)

    async def __aenter__(self) -> Measurement:
        if self._start is None:
            self._start = self._recorder.clock.monotonic()
        budget = self._recorder._cap(self.operation)
        if budget is not None and self._recorder.abort is not None:
            self._timeout = asyncio.timeout(budget.threshold)
            await self._timeout.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        timeout, self._timeout = self._timeout, None
        if timeout is not None:
            try:
                await timeout.__aexit__(exc_type, exc, tb)
            except TimeoutError:
                budget = self._recorder._cap(self.operation)
                assert budget is not None
                self._finish(True)
                raise overrun(self.operation, budget) from None
        self._finish(exc_type is None)


class SLARecorder:
    """Collects operation timings and checks budgets against them.

    ``budgets`` are strings (``"p95<200ms"``) or ``Budget`` objects. With
    ``emit_samples=True`` every call is also written as an ``sla.sample`` event.
    ``history`` (the test's): samples taken while a fault was active are filed under
    ``faults`` in ``variants``, the others under ``baseline``; ``amplification`` budgets
    read its watched calls (default: the active history when checked). ``abort``: stop
    measurements past a ``max<`` budget (see the module docstring).
    """

    def __init__(
        self,
        *budgets: str | Budget,
        clock: Clock | None = None,
        name: str | None = None,
        emit_samples: bool = False,
        history: History | None = None,
        abort: Abort | None = None,
    ) -> None:
        self.clock: Clock = _validate.clock(clock)
        self.name = None if name is None else _validate.text(name, "name")
        self.history = _validate.history(history)
        self.abort = _validate.callable_or_none(abort, "abort")
        self.budgets: list[Budget] = []
        self.emit_samples = emit_samples
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
        self.budgets.extend(parse_budgets(budgets))

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

    def _cap(self, operation: str) -> Budget | None:
        """The tightest ``max<`` budget that applies to ``operation``, if any."""
        caps = [b for b in self.budgets if b.metric == "max" and b.op in ("<", "<=")
                and b.operation in (None, operation)]
        return min(caps, key=lambda b: b.threshold, default=None)

    def _amplification(self, budget: Budget) -> BudgetVerdict:
        history = self.history if self.history is not None else active_history()
        found = requests(history.snapshot() if history is not None else ())
        layers = [budget.operation] if budget.operation else list(found.layers)
        if not found.count or not any(found.layers[layer] for layer in layers):
            return BudgetVerdict(budget, None, None, "no watched calls to count per user "
                                 "request (watch each layer with watch_calls)")
        observed = max(found.ratio(layer) for layer in layers)
        return budget.check(observed, samples=found.count)

    def check(self) -> list[BudgetVerdict]:
        """Every budget's verdict (``passed`` None: could not be measured)."""
        verdicts = []
        for budget in self.budgets:
            if budget.metric == "amplification":
                verdicts.append(self._amplification(budget))
                continue
            stats = self.stats(budget.operation)
            observed, approximate = stats.observe(budget)
            samples = stats.latency.count if budget.quantile is not None else stats.calls
            verdicts.append(budget.check(observed, samples=samples, approximate=approximate))
        return verdicts

    def verify(self) -> list[BudgetVerdict]:
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
