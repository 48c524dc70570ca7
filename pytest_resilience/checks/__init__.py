"""Checkers that judge a recorded event history and explain a violation in one paragraph.

Each ``check_*`` returns a ``Verdict`` (truthy when the history passed; ``assert_ok()``
raises ``CheckFailed``) and writes it into the active history as a ``check.verdict``
event. They judge histories written by this project's components, by the observers of
``pytest_resilience.observe`` (plain code), and by the tenacity / pybreaker recorders.
"""

from __future__ import annotations

from pytest_resilience.checks._adapters import PybreakerRecorder, TenacityRecorder
from pytest_resilience.checks._amplification import check_amplification
from pytest_resilience.checks._breaker import check_breaker
from pytest_resilience.checks._eviction import check_eviction
from pytest_resilience.checks._latency import check_latency
from pytest_resilience.checks._retry import check_retry
from pytest_resilience.checks._rollback import check_rollback, snapshot
from pytest_resilience.checks._ttl import check_ttl
from pytest_resilience.checks._verdict import CheckFailed, Verdict

__all__ = [
    "CheckFailed",
    "PybreakerRecorder",
    "TenacityRecorder",
    "Verdict",
    "check_amplification",
    "check_breaker",
    "check_eviction",
    "check_latency",
    "check_retry",
    "check_rollback",
    "check_ttl",
    "snapshot",
]
