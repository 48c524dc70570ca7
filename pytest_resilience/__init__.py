"""pytest-resilience: reliability components, fault injection and SLA checks for pytest.

The core components, re-exported lazily; nothing else lives here. A name's module is
imported the first time the name is used, so ``pytest -p resilience`` (which imports this
package) pays for no component a test run does not touch.

Families are public subpackages, each the one spelling of its names:
``pytest_resilience.memory`` (pressure and GPU monitors, the model cache),
``pytest_resilience.chroma`` (transactions, validation, backups), ``pytest_resilience.sla``
(budgets, histograms), ``pytest_resilience.observability`` (logs, tracing, metrics),
``pytest_resilience.checks`` (checkers), ``pytest_resilience.chaos`` (property-based fault
runs), ``pytest_resilience.report`` (report files), ``pytest_resilience.kinds`` (the
declared event kinds), ``pytest_resilience.validate`` (the argument checks, for your own
components and fault families), ``pytest_resilience.patching`` (exact attribute patches)
and ``pytest_resilience.arming`` (the hook a fault registry calls when it arms a fault).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_resilience._backoff import Backoff
    from pytest_resilience._breaker import (
        BreakerState,
        CircuitBreaker,
    )
    from pytest_resilience._clock import (
        Clock,
        SystemClock,
        VirtualClock,
    )
    from pytest_resilience._concurrency import (
        AsyncRWLock,
        FairSemaphore,
        TimeoutLock,
    )
    from pytest_resilience._concurrency_pool import ResourcePool
    from pytest_resilience._deadletter import (
        DeadJob,
        DeadLetterQueue,
        QuarantinedJob,
        ReplayResult,
    )
    from pytest_resilience._errors import (
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
    from pytest_resilience._events import (
        Event,
        History,
        active_history,
        add_listener,
        emit,
        recording,
    )
    from pytest_resilience._health import (
        CheckResult,
        HealthRegistry,
        HealthReport,
    )
    from pytest_resilience._jobqueue import (
        Job,
        JobQueue,
        QueueFull,
    )
    from pytest_resilience._ratelimit import (
        RateLimiter,
        TokenBucket,
    )
    from pytest_resilience._redis_storage import RedisStorage
    from pytest_resilience._retry import (
        Retry,
        RetryState,
        retry,
    )
    from pytest_resilience._retry_budget import RetryBudget
    from pytest_resilience._storage import (
        FailurePolicy,
        MemoryStorage,
        Storage,
        StorageUnavailable,
    )

__version__ = "0.1.0"

#: Each public name, by the module that defines it.
_SOURCES: dict[str, tuple[str, ...]] = {
    "pytest_resilience._backoff": ("Backoff",),
    "pytest_resilience._breaker": ("BreakerState", "CircuitBreaker"),
    "pytest_resilience._clock": ("Clock", "SystemClock", "VirtualClock"),
    "pytest_resilience._concurrency": ("AsyncRWLock", "FairSemaphore", "TimeoutLock"),
    "pytest_resilience._concurrency_pool": ("ResourcePool",),
    "pytest_resilience._deadletter": (
        "DeadJob", "DeadLetterQueue", "QuarantinedJob", "ReplayResult",
    ),
    "pytest_resilience._errors": (
        "Attempt", "BackupError", "BudgetExceeded", "CircuitOpenError", "CorruptionDetected",
        "FaultInjected", "LockTimeout", "RateLimitExceeded", "ResilienceError", "RetryError",
        "TransactionError", "ValidationError",
    ),
    "pytest_resilience._events": (
        "Event", "History", "active_history", "add_listener", "emit", "recording",
    ),
    "pytest_resilience._health": ("CheckResult", "HealthRegistry", "HealthReport"),
    "pytest_resilience._jobqueue": ("Job", "JobQueue", "QueueFull"),
    "pytest_resilience._ratelimit": ("RateLimiter", "TokenBucket"),
    "pytest_resilience._retry": ("Retry", "RetryState", "retry"),
    "pytest_resilience._redis_storage": ("RedisStorage",),
    "pytest_resilience._retry_budget": ("RetryBudget",),
    "pytest_resilience._storage": (
        "FailurePolicy", "MemoryStorage", "Storage", "StorageUnavailable",
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
    "BreakerState",
    "BudgetExceeded",
    "CheckResult",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "CorruptionDetected",
    "DeadJob",
    "DeadLetterQueue",
    "Event",
    "FailurePolicy",
    "FairSemaphore",
    "FaultInjected",
    "HealthRegistry",
    "HealthReport",
    "History",
    "Job",
    "JobQueue",
    "LockTimeout",
    "MemoryStorage",
    "QuarantinedJob",
    "QueueFull",
    "RateLimitExceeded",
    "RateLimiter",
    "RedisStorage",
    "ReplayResult",
    "ResilienceError",
    "ResourcePool",
    "Retry",
    "RetryBudget",
    "RetryError",
    "RetryState",
    "Storage",
    "StorageUnavailable",
    "SystemClock",
    "TimeoutLock",
    "TokenBucket",
    "TransactionError",
    "ValidationError",
    "VirtualClock",
    "active_history",
    "add_listener",
    "emit",
    "recording",
    "retry",
]
