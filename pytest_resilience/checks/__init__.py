"""Checkers that judge a recorded event history and explain a violation in one paragraph.

Each ``check_*`` returns a ``Verdict`` (truthy when the history passed; ``assert_ok()``
raises ``CheckFailed``). ``adapters`` records tenacity, pybreaker and cachetools as events.
"""

from __future__ import annotations

from pytest_resilience.checks._adapters import PybreakerRecorder, TenacityRecorder, recording_cache
from pytest_resilience.checks._breaker import check_breaker
from pytest_resilience.checks._eviction import check_eviction
from pytest_resilience.checks._latency import LatencyBudget, check_latency
from pytest_resilience.checks._retry import check_retry
from pytest_resilience.checks._rollback import check_rollback, snapshot
from pytest_resilience.checks._verdict import CheckFailed, Verdict

__all__ = [
    "CheckFailed",
    "LatencyBudget",
    "PybreakerRecorder",
    "TenacityRecorder",
    "Verdict",
    "check_breaker",
    "check_eviction",
    "check_latency",
    "check_retry",
    "check_rollback",
    "recording_cache",
    "snapshot",
]
