"""pytest-resilience: reliability components, fault injection and SLA checks for pytest.

The public API, re-exported; nothing else lives here. Chroma names are exported lazily
(``pytest_resilience.ChromaTransaction`` imports chromadb's helpers only when used).
Checkers and the chaos engine are the submodules ``pytest_resilience.checks`` and
``pytest_resilience.chaos``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_resilience.backoff import Backoff
from pytest_resilience.breaker import BreakerState, CircuitBreaker
from pytest_resilience.clock import Clock, SystemClock, VirtualClock
from pytest_resilience.concurrency import AsyncRWLock, FairSemaphore, TimeoutLock
from pytest_resilience.concurrency_pool import ResourcePool
from pytest_resilience.deadletter import DeadJob, DeadLetterQueue, ReplayResult
from pytest_resilience.errors import (
    Attempt,
    BackupError,
    BudgetExceeded,
    CircuitOpenError,
    CorruptionDetected,
    FaultInjected,
    LockTimeout,
    RateLimitExceeded,
    ResilienceError,
    RetryError,
    TransactionError,
    ValidationError,
)
from pytest_resilience.events import Event, History, active_history, add_listener, emit, recording
from pytest_resilience.health import CheckResult, HealthRegistry, HealthReport
from pytest_resilience.memory import (
    CacheStats,
    GPUMonitor,
    MemoryPressureMonitor,
    ModelCache,
    ModelLoadError,
    PressureLevel,
)
from pytest_resilience.observability import (
    HumanFormatter,
    JsonFormatter,
    PrometheusMetrics,
    Redactor,
    correlation,
    log_events,
    log_to_files,
    submit_in_context,
    trace_operation,
)
from pytest_resilience.ratelimit import RateLimiter, TokenBucket
from pytest_resilience.retry import Retry, RetryState, retry
from pytest_resilience.retry_budget import RetryBudget
from pytest_resilience.sla import Budget, LatencyHistogram, SLARecorder

if TYPE_CHECKING:
    from pytest_resilience.chroma import (
        BackupManager,
        ChromaTransaction,
        seal_store,
        transaction,
        validate_record,
        verify_store,
    )

__version__ = "0.1.0"

_LAZY = {
    "BackupManager": "pytest_resilience.chroma",
    "ChromaTransaction": "pytest_resilience.chroma",
    "seal_store": "pytest_resilience.chroma",
    "transaction": "pytest_resilience.chroma",
    "validate_record": "pytest_resilience.chroma",
    "verify_store": "pytest_resilience.chroma",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_resilience' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AsyncRWLock",
    "Attempt",
    "Backoff",
    "BackupError",
    "BackupManager",
    "BreakerState",
    "Budget",
    "BudgetExceeded",
    "CacheStats",
    "CheckResult",
    "ChromaTransaction",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "CorruptionDetected",
    "DeadJob",
    "DeadLetterQueue",
    "Event",
    "FairSemaphore",
    "FaultInjected",
    "GPUMonitor",
    "HealthRegistry",
    "HealthReport",
    "History",
    "HumanFormatter",
    "JsonFormatter",
    "LatencyHistogram",
    "LockTimeout",
    "MemoryPressureMonitor",
    "ModelCache",
    "ModelLoadError",
    "PressureLevel",
    "PrometheusMetrics",
    "RateLimitExceeded",
    "RateLimiter",
    "Redactor",
    "ReplayResult",
    "ResilienceError",
    "ResourcePool",
    "Retry",
    "RetryBudget",
    "RetryError",
    "RetryState",
    "SLARecorder",
    "SystemClock",
    "TimeoutLock",
    "TokenBucket",
    "TransactionError",
    "ValidationError",
    "VirtualClock",
    "active_history",
    "add_listener",
    "correlation",
    "emit",
    "log_events",
    "log_to_files",
    "recording",
    "retry",
    "seal_store",
    "submit_in_context",
    "trace_operation",
    "transaction",
    "validate_record",
    "verify_store",
]
