"""Observability: events as structured logs, correlation context, tracing and metrics.

Nothing here imports ``prometheus_client`` until ``PrometheusMetrics`` is built.
"""

from __future__ import annotations

from pytest_resilience.observability._context import (
    Correlation,
    bind,
    correlation,
    current_context,
    current_correlation_id,
    submit_in_context,
)
from pytest_resilience.observability._files import FileLogging, log_to_files
from pytest_resilience.observability._logs import (
    EVENT_LOGGER,
    EventLogging,
    HumanFormatter,
    JsonFormatter,
    event_level,
    log_events,
)
from pytest_resilience.observability._metrics import PrometheusMetrics
from pytest_resilience.observability._redact import DEFAULT_SECRET_KEYS, REDACTED, Redactor
from pytest_resilience.observability._tracing import TraceOperation, peak_rss, trace_operation

__all__ = [
    "DEFAULT_SECRET_KEYS",
    "EVENT_LOGGER",
    "REDACTED",
    "Correlation",
    "EventLogging",
    "FileLogging",
    "HumanFormatter",
    "JsonFormatter",
    "PrometheusMetrics",
    "Redactor",
    "TraceOperation",
    "bind",
    "correlation",
    "current_context",
    "current_correlation_id",
    "event_level",
    "log_events",
    "log_to_files",
    "peak_rss",
    "submit_in_context",
    "trace_operation",
]
