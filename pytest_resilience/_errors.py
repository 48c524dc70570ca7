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

    # A breaker rejecting calls builds this error per call; ``_rejection`` leaves the
    # message and context to be made when first read (most callers never read them),
    # and the slots spare it an instance dict.
    __slots__ = ("_pending", "name", "retry_after")

    recoverable = True
    _text: str | None = None
    _context: dict[str, object] | None = None
    _pending: tuple[str, int] | None

    def __init__(
        self,
        message: str,
        *,
        name: str,
        retry_after: float,
        context: Mapping[str, object] | None = None,
    ) -> None:
        self._pending = None
        super().__init__(message, context=context)
        self.name = name
        self.retry_after = retry_after

    @classmethod
    def _rejection(cls, name: str, state: str, retry_after: float,
                   trial_calls: int) -> CircuitOpenError:
        """A breaker's rejection: the same error as ``__init__`` would build with the
        breaker's message, but formatted only when read."""
        error = cls.__new__(cls)
        error.name = name
        error.retry_after = retry_after
        error._pending = (state, trial_calls)
        return error

    def _settle(self) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            state, trial_calls = pending
            detail = (
                f"retry in {self.retry_after:.3f}s" if self.retry_after > 0
                else f"all {trial_calls} half-open trial calls are in flight"
            )
            ResilienceError.__init__(self, f"circuit {self.name!r} is {state}: {detail}",
                                     context={"state": state})

    @property
    def message(self) -> str:
        """What went wrong, for people."""
        self._settle()
        return self._text or ""

    @message.setter
    def message(self, text: str) -> None:
        self._text = text

    @property
    def context(self) -> dict[str, object]:
        """What the breaker knew when it refused (``state``)."""
        self._settle()
        if self._context is None:
            self._context = {}
        return self._context

    @context.setter
    def context(self, value: dict[str, object]) -> None:
        self._context = value

    def __repr__(self) -> str:
        self._settle()
        return super().__repr__()


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
