"""Prometheus exposition of a scripted run, parsed back."""

from __future__ import annotations

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import emit, recording
from pytest_resilience.observability._tracing import trace_operation

prom = pytest.importorskip("prometheus_client", reason="metrics need prometheus-client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from pytest_resilience.observability._metrics import PrometheusMetrics  # noqa: E402


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if not s.name.endswith("_created")}  # creation timestamps differ between runs


def _scripted_run(clock: VirtualClock) -> None:
    for attempt, outcome in ((1, "error"), (2, "error"), (3, "ok")):
        emit("retry.attempt", "fetch", clock, attempt=attempt, outcome=outcome, error=None,
             elapsed=0.0)
        if outcome == "error":
            emit("retry.sleep", "fetch", clock, attempt=attempt, delay=0.1)
    emit("retry.giveup", "upload", clock, attempts=3, reason="deadline")
    emit("breaker.transition", "payments", clock, **{"from": "closed", "to": "open"})
    emit("breaker.transition", "payments", clock, **{"from": "open", "to": "half_open"})
    for _ in range(4):
        emit("ratelimit.rejected", "api", clock, tokens=1, waited=0.0)
    emit("cache.evict", "models", clock, key="a", bytes=10, cause="lru")
    emit("cache.evict", "models", clock, key="b", bytes=10, cause="pressure")
    emit("cache.evict", "models", clock, key="c", bytes=10, cause="pressure")
    emit("chroma.rollback", "docs", clock, ops=3, ids=1, outcome="ok", unrestored=0)
    emit("memory.pressure", "memory", clock, level="critical", previous="normal", percent=85.0)
    emit("gpu.usage", "gpu", clock, device=0, used=6 * 2**30, total=8 * 2**30, level="warning")
    emit("cache.hit", "models", clock, key="a", bytes=1)  # not a metric
    for seconds in (0.004, 0.02, 0.3):
        with trace_operation("embed", clock=clock):
            clock.sleep(seconds)


def test_scripted_run_exposition_numbers() -> None:
    clock = VirtualClock()
    with PrometheusMetrics() as metrics:
        _scripted_run(clock)
    emit("retry.sleep", "fetch", clock, attempt=9, delay=1)  # after close: not counted
    s = _samples(metrics.exposition())
    assert s[("resilience_retry_attempts_total", (("name", "fetch"), ("outcome", "error")))] == 2
    assert s[("resilience_retry_attempts_total", (("name", "fetch"), ("outcome", "ok")))] == 1
    assert s[("resilience_retries_total", (("name", "fetch"),))] == 2
    giveup = (("name", "upload"), ("reason", "deadline"))
    assert s[("resilience_retry_giveups_total", giveup)] == 1
    assert s[("resilience_breaker_transitions_total",
              (("from", "closed"), ("name", "payments"), ("to", "open")))] == 1
    assert s[("resilience_breaker_state", (("name", "payments"),))] == 1  # half_open
    assert s[("resilience_ratelimit_rejected_total", (("name", "api"),))] == 4
    pressure = (("cause", "pressure"), ("name", "models"))
    assert s[("resilience_cache_evictions_total", pressure)] == 2
    assert s[("resilience_cache_evictions_total", (("cause", "lru"), ("name", "models")))] == 1
    assert s[("resilience_chroma_rollbacks_total", (("collection", "docs"),))] == 1
    assert s[("resilience_memory_pressure_level", (("name", "memory"),))] == 2
    gpu = (("device", "0"), ("name", "gpu"))
    assert s[("resilience_gpu_memory_used_bytes", gpu)] == 6 * 2**30
    assert s[("resilience_gpu_memory_total_bytes", gpu)] == 8 * 2**30
    assert s[("resilience_gpu_pressure_level", gpu)] == 1
    op = (("operation", "embed"), ("outcome", "ok"))
    assert s[("resilience_operation_duration_seconds_count", op)] == 3
    assert s[("resilience_operation_duration_seconds_sum", op)] == pytest.approx(0.324)
    bucket = "resilience_operation_duration_seconds_bucket"
    assert s[(bucket, (("le", "0.005"), *op))] == 1
    assert s[(bucket, (("le", "0.25"), *op))] == 2
    assert s[(bucket, (("le", "+Inf"), *op))] == 3


def test_consume_a_recorded_history_gives_the_same_numbers() -> None:
    clock = VirtualClock()
    with recording() as history:
        _scripted_run(clock)
    live = PrometheusMetrics()
    with live:
        _scripted_run(VirtualClock())
    replayed = PrometheusMetrics().consume(history)
    assert _samples(replayed.exposition()) == _samples(live.exposition())


def test_registry_and_namespace() -> None:
    registry = prom.CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry, namespace="svc")
    metrics.consume([])
    emit_free = metrics.exposition()
    assert "svc_retries_total" in emit_free
    assert metrics.registry is registry


def test_bad_namespace() -> None:
    with pytest.raises(ValueError) as info:
        PrometheusMetrics(namespace="a-b")
    assert str(info.value) == "namespace='a-b' is not a metric prefix. Pass e.g. 'resilience'."


def test_missing_prometheus_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError) as info:
        PrometheusMetrics()
    assert "pip install pytest-resilience[metrics]" in str(info.value)
