"""Prometheus export of component events (needs ``prometheus-client``; imported lazily).

``PrometheusMetrics`` turns events into metrics, from a live listener (``install()`` /
``with``) or from a recorded history (``consume(history)``):

| metric (namespace ``resilience``) | type | labels | from |
|---|---|---|---|
| ``retry_attempts_total`` | counter | name, outcome | ``retry.attempt`` |
| ``retries_total`` | counter | name | ``retry.sleep`` (one per retry scheduled) |
| ``retry_giveups_total`` | counter | name, reason | ``retry.giveup`` |
| ``breaker_transitions_total`` | counter | name, from, to | ``breaker.transition`` |
| ``breaker_state`` | gauge | name | 0 closed, 1 half_open, 2 open |
| ``ratelimit_rejected_total`` | counter | name | ``ratelimit.rejected`` |
| ``cache_evictions_total`` | counter | name, cause | ``cache.evict`` |
| ``chroma_rollbacks_total`` | counter | collection | ``chroma.rollback`` |
| ``memory_pressure_level`` | gauge | name | 0 normal .. 3 emergency |
| ``gpu_memory_used_bytes`` / ``gpu_memory_total_bytes`` | gauge | name, device | ``gpu.usage`` |
| ``gpu_pressure_level`` | gauge | name, device | ``gpu.usage`` |
| ``operation_duration_seconds`` | histogram | operation, outcome | ``trace.operation`` |
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from pytest_resilience import _validate
from pytest_resilience._events import Event, add_listener
from pytest_resilience.kinds import (
    BREAKER_TRANSITION,
    CACHE_EVICT,
    CHROMA_ROLLBACK,
    GPU_USAGE,
    MEMORY_PRESSURE,
    RATELIMIT_REJECTED,
    RETRY_ATTEMPT,
    RETRY_GIVEUP,
    RETRY_SLEEP,
    TRACE_OPERATION,
)

__all__ = ["BREAKER_STATES", "PRESSURE_LEVELS", "PrometheusMetrics"]

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
PRESSURE_LEVELS = {"normal": 0, "warning": 1, "critical": 2, "emergency": 3}
DEFAULT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _level(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return float(PRESSURE_LEVELS.get(str(value).lower(), -1))


class PrometheusMetrics:
    """Event-driven Prometheus metrics in ``registry`` (a new ``CollectorRegistry`` by default).

    Raises ``ImportError`` naming the extra when ``prometheus-client`` is not installed.
    """

    def __init__(
        self,
        *,
        registry: Any = None,
        namespace: str = "resilience",
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        try:
            import prometheus_client as prom
        except ImportError as exc:
            raise ImportError(
                "PrometheusMetrics needs prometheus-client. Install it with "
                "`pip install pytest-resilience[metrics]`."
            ) from exc
        buckets = _check_buckets(buckets)
        if not isinstance(namespace, str) or not namespace.isidentifier():
            raise ValueError(
                f"namespace={_validate.show(namespace)} is not a metric prefix. Pass e.g. "
                f"'resilience'."
            )
        self._prom = prom
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        ns, reg = namespace, self.registry

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Any:
            return prom.Counter(name, doc, labels, namespace=ns, registry=reg)

        def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Any:
            return prom.Gauge(name, doc, labels, namespace=ns, registry=reg)

        self.retry_attempts = counter("retry_attempts", "Retry attempts.", ("name", "outcome"))
        self.retries = counter("retries", "Retries scheduled (sleeps).", ("name",))
        self.retry_giveups = counter("retry_giveups", "Retries given up.", ("name", "reason"))
        self.breaker_transitions = counter(
            "breaker_transitions", "Circuit breaker transitions.", ("name", "from", "to"))
        self.breaker_state = gauge(
            "breaker_state", "Breaker state: 0 closed, 1 half_open, 2 open.", ("name",))
        self.ratelimit_rejected = counter(
            "ratelimit_rejected", "Rate limiter rejections.", ("name",))
        self.cache_evictions = counter("cache_evictions", "Cache evictions.", ("name", "cause"))
        self.chroma_rollbacks = counter(
            "chroma_rollbacks", "Chroma transaction rollbacks.", ("collection",))
        self.memory_pressure = gauge(
            "memory_pressure_level", "Memory pressure: 0 normal .. 3 emergency.", ("name",))
        self.gpu_used = gauge("gpu_memory_used_bytes", "GPU memory used.", ("name", "device"))
        self.gpu_total = gauge("gpu_memory_total_bytes", "GPU memory total.", ("name", "device"))
        self.gpu_pressure = gauge(
            "gpu_pressure_level", "GPU pressure: 0 normal .. 2 critical.", ("name", "device"))
        self.operation_duration = prom.Histogram(
            "operation_duration_seconds", "Traced operation latency.", ("operation", "outcome"),
            namespace=ns, registry=reg, buckets=tuple(buckets))
        self._remove: Callable[[], None] | None = None
        self._handlers: dict[str, Callable[[Event], None]] = {
            RETRY_ATTEMPT: lambda e: self.retry_attempts.labels(
                e.source, str(e.attrs.get("outcome", "unknown"))).inc(),
            RETRY_SLEEP: lambda e: self.retries.labels(e.source).inc(),
            RETRY_GIVEUP: lambda e: self.retry_giveups.labels(
                e.source, str(e.attrs.get("reason", "unknown"))).inc(),
            BREAKER_TRANSITION: self._on_transition,
            RATELIMIT_REJECTED: lambda e: self.ratelimit_rejected.labels(e.source).inc(),
            CACHE_EVICT: lambda e: self.cache_evictions.labels(
                e.source, str(e.attrs.get("cause", "unknown"))).inc(),
            CHROMA_ROLLBACK: lambda e: self.chroma_rollbacks.labels(e.source).inc(),
            MEMORY_PRESSURE: lambda e: self.memory_pressure.labels(e.source).set(
                _level(e.attrs.get("level"))),
            GPU_USAGE: self._on_gpu,
            TRACE_OPERATION: lambda e: self.operation_duration.labels(
                e.source, str(e.attrs.get("outcome", "unknown"))).observe(
                float(e.attrs.get("duration", 0.0))),
        }

    def _on_transition(self, event: Event) -> None:
        to = str(event.attrs.get("to"))
        self.breaker_transitions.labels(event.source, str(event.attrs.get("from")), to).inc()
        self.breaker_state.labels(event.source).set(BREAKER_STATES.get(to, -1))

    def _on_gpu(self, event: Event) -> None:
        device = str(event.attrs.get("device", 0))
        if "used" in event.attrs:
            self.gpu_used.labels(event.source, device).set(float(event.attrs["used"]))
        if "total" in event.attrs:
            self.gpu_total.labels(event.source, device).set(float(event.attrs["total"]))
        if "level" in event.attrs:
            self.gpu_pressure.labels(event.source, device).set(_level(event.attrs["level"]))

    def __call__(self, event: Event) -> None:
        """Update the metrics ``event`` maps to (other kinds are ignored)."""
        handler = self._handlers.get(event.kind)
        if handler is not None:
            handler(event)

    def consume(self, events: Iterable[Event]) -> PrometheusMetrics:
        """Feed recorded events (e.g. a ``History``); returns self."""
        for event in events:
            self(event)
        return self

    def install(self) -> PrometheusMetrics:
        """Listen to every event emitted from now on (until ``close()``); returns self."""
        if self._remove is None:
            self._remove = add_listener(self)
        return self

    def close(self) -> None:
        """Stop listening (idempotent); the metrics keep their values."""
        if self._remove is not None:
            self._remove()
            self._remove = None

    def __enter__(self) -> PrometheusMetrics:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def exposition(self) -> str:
        """The registry in the Prometheus text format."""
        text: bytes = self._prom.generate_latest(self.registry)
        return text.decode("utf-8")


def _check_buckets(buckets: object) -> tuple[float, ...]:
    accepted = "increasing finite upper bounds in seconds, e.g. (0.01, 0.1, 1.0)"
    if isinstance(buckets, str | bytes) or not isinstance(buckets, Iterable):
        raise TypeError(f"buckets={_validate.show(buckets)} is not a sequence. Pass {accepted}.")
    items = tuple(buckets)
    values = tuple(_validate.number(b, "buckets", what="a bucket bound", accepted=accepted)
                   for b in items)
    if not values or any(b >= c for b, c in itertools.pairwise(values)):
        raise ValueError(f"buckets={_validate.show(items)} are not increasing. Pass {accepted}.")
    return values
