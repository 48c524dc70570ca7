"""pytest-resilience: reliability components, fault injection and SLA checks for pytest.

The public API, re-exported lazily; nothing else lives here. A name's module is imported
the first time the name is used, so ``pytest -p resilience`` (which imports this package)
pays for no component a test run does not touch.
Checkers and the chaos engine are the submodules ``pytest_resilience.checks`` and
``pytest_resilience.chaos``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_resilience.backoff import Backoff
    from pytest_resilience.breaker import (
        BreakerState,
        CircuitBreaker,
    )
    from pytest_resilience.chroma import (
        BackupManager,
        ChromaTransaction,
        seal_store,
        transaction,
        validate_record,
        verify_store,
    )
    from pytest_resilience.clock import (
        Clock,
        SystemClock,
        VirtualClock,
    )
    from pytest_resilience.concurrency import (
        AsyncRWLock,
        FairSemaphore,
        TimeoutLock,
    )
    from pytest_resilience.concurrency_pool import ResourcePool
    from pytest_resilience.deadletter import (
        DeadJob,
        DeadLetterQueue,
        ReplayResult,
    )
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
    from pytest_resilience.events import (
        Event,
        History,
        active_history,
        add_listener,
        emit,
        recording,
    )
    from pytest_resilience.health import (
        CheckResult,
        HealthRegistry,
        HealthReport,
    )
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
    from pytest_resilience.ratelimit import (
        RateLimiter,
        TokenBucket,
    )
    from pytest_resilience.retry import (
        Retry,
        RetryState,
        retry,
    )
    from pytest_resilience.retry_budget import RetryBudget
    from pytest_resilience.sla import (
        Budget,
        LatencyHistogram,
        SLARecorder,
    )

__version__ = "0.1.0"

#: Each public name, by the module that defines it.
_SOURCES: dict[str, tuple[str, ...]] = {
    "pytest_resilience.backoff": ("Backoff",),
    "pytest_resilience.breaker": ("BreakerState", "CircuitBreaker"),
    "pytest_resilience.clock": ("Clock", "SystemClock", "VirtualClock"),
    "pytest_resilience.concurrency": ("AsyncRWLock", "FairSemaphore", "TimeoutLock"),
    "pytest_resilience.concurrency_pool": ("ResourcePool",),
    "pytest_resilience.deadletter": ("DeadJob", "DeadLetterQueue", "ReplayResult"),
    "pytest_resilience.errors": (
        "Attempt", "BackupError", "BudgetExceeded", "CircuitOpenError", "CorruptionDetected",
        "FaultInjected", "LockTimeout", "RateLimitExceeded", "ResilienceError", "RetryError",
        "TransactionError", "ValidationError",
    ),
    "pytest_resilience.events": (
        "Event", "History", "active_history", "add_listener", "emit", "recording",
    ),
    "pytest_resilience.health": ("CheckResult", "HealthRegistry", "HealthReport"),
    "pytest_resilience.memory": (
        "CacheStats", "GPUMonitor", "MemoryPressureMonitor", "ModelCache", "ModelLoadError",
        "PressureLevel",
    ),
    "pytest_resilience.observability": (
        "HumanFormatter", "JsonFormatter", "PrometheusMetrics", "Redactor", "correlation",
        "log_events", "log_to_files", "submit_in_context", "trace_operation",
    ),
    "pytest_resilience.ratelimit": ("RateLimiter", "TokenBucket"),
    "pytest_resilience.retry": ("Retry", "RetryState", "retry"),
    "pytest_resilience.retry_budget": ("RetryBudget",),
    "pytest_resilience.sla": ("Budget", "LatencyHistogram", "SLARecorder"),
    "pytest_resilience.chroma": (
        "BackupManager", "ChromaTransaction", "seal_store", "transaction", "validate_record",
        "verify_store",
    ),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_resilience' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
