"""The ``ResilienceError`` hierarchy.

Every error carries a ``context`` dict (what the component knew when it gave up) and a
``recoverable`` flag (whether trying again later can succeed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Attempt",
    "BackupError",
    "BudgetExceeded",
    "CircuitOpenError",
    "CorruptionDetected",
    "FaultInjected",
    "LockTimeout",
    "RateLimitExceeded",
    "ResilienceError",
    "RetryError",
    "TransactionError",
    "ValidationError",
]


class ResilienceError(Exception):
    """Base of every error this project raises on purpose."""

    recoverable: bool = False

    def __init__(
        self,
        message: str,
        *,
        context: Mapping[str, object] | None = None,
        recoverable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, object] = dict(context or {})
        if recoverable is not None:
            self.recoverable = recoverable

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a retried call: its number (from 1), clock times and outcome."""

    number: int
    started: float
    ended: float
    exception: BaseException | None = None

    @property
    def duration(self) -> float:
        """Seconds the attempt took on the clock in use."""
        return self.ended - self.started


class RetryError(ResilienceError):
    """Every attempt failed (or the deadline passed); ``attempts`` holds each one."""

    def __init__(
        self,
        message: str,
        *,
        attempts: Sequence[Attempt],
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.attempts: tuple[Attempt, ...] = tuple(attempts)

    @property
    def last_exception(self) -> BaseException | None:
        """The exception of the final attempt, if it raised one."""
        return self.attempts[-1].exception if self.attempts else None


class CircuitOpenError(ResilienceError):
    """The circuit breaker is open; ``retry_after`` seconds until it lets a call through."""

    recoverable = True

    def __init__(
        self,
        message: str,
        *,
        name: str,
        retry_after: float,
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.name = name
        self.retry_after = retry_after


class RateLimitExceeded(ResilienceError):
    """No token within the allowed wait; ``retry_after`` estimates when one will be free."""

    recoverable = True

    def __init__(
        self,
        message: str,
        *,
        name: str,
        retry_after: float | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.name = name
        self.retry_after = retry_after


class LockTimeout(ResilienceError):
    """A lock, semaphore or pool was not acquired within ``timeout`` seconds."""

    recoverable = True

    def __init__(
        self,
        message: str,
        *,
        resource: str,
        timeout: float,
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.resource = resource
        self.timeout = timeout


class ValidationError(ResilienceError, ValueError):
    """Records were refused before writing; ``problems`` lists every problem at once."""

    def __init__(
        self,
        problems: Sequence[str],
        *,
        message: str | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        if message is None:
            count = len(self.problems)
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{count} validation problem{'s' if count != 1 else ''}:\n{lines}"
        super().__init__(message, context=context)


class TransactionError(ResilienceError):
    """A transaction could not be applied or rolled back; ``unrestored`` names what is left."""

    def __init__(
        self,
        message: str,
        *,
        unrestored: Sequence[str] = (),
        journal: str | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.unrestored: tuple[str, ...] = tuple(unrestored)
        self.journal = journal


class BackupError(ResilienceError):
    """A backup could not be created, verified or restored; the original is untouched."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.path = path


class CorruptionDetected(ResilienceError):
    """A store failed an integrity check; ``findings`` names each problem and file."""

    def __init__(
        self,
        message: str,
        *,
        findings: Sequence[str] = (),
        path: str | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.findings: tuple[str, ...] = tuple(findings)
        self.path = path


class BudgetExceeded(ResilienceError):
    """An SLA budget was broken: ``budget`` as written, ``observed`` as measured."""

    def __init__(
        self,
        message: str,
        *,
        budget: str,
        observed: float | None = None,
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.budget = budget
        self.observed = observed


class FaultInjected(ResilienceError):
    """Raised by a failpoint whose action is ``raise`` without a specific exception."""

    recoverable = True

    def __init__(
        self,
        message: str,
        *,
        failpoint: str,
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.failpoint = failpoint
