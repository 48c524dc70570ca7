"""pytest-resilience: reliability components, fault injection and SLA checks for pytest.

The public API, re-exported; nothing else lives here.
"""

from __future__ import annotations

from pytest_resilience.clock import Clock, SystemClock, VirtualClock
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

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "BackupError",
    "BudgetExceeded",
    "CircuitOpenError",
    "Clock",
    "CorruptionDetected",
    "Event",
    "FaultInjected",
    "History",
    "LockTimeout",
    "RateLimitExceeded",
    "ResilienceError",
    "RetryError",
    "SystemClock",
    "TransactionError",
    "ValidationError",
    "VirtualClock",
    "active_history",
    "add_listener",
    "emit",
    "recording",
]
