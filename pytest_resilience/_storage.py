"""Where components keep their state: the ``Storage`` protocol, ``MemoryStorage`` (this
process, the default) and the policy for a shared store that cannot be reached.

A component built with ``storage=`` asks the storage for a *store* of its kind (a
bucket's tokens, a breaker's state, ...). ``MemoryStorage`` hands back ``None`` for the
components, which keeps their state inside the object exactly as without a storage
(same code, same speed); it holds the state of a ``JobQueue`` itself. ``RedisStorage``
hands back stores whose every change is one atomic script on the server.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from pytest_resilience._errors import ResilienceError

if TYPE_CHECKING:
    from pytest_resilience._breaker import BreakerState, CircuitBreaker
    from pytest_resilience._deadletter import DeadLetterQueue
    from pytest_resilience._jobqueue import JobQueue
    from pytest_resilience._ratelimit import TokenBucket
    from pytest_resilience._retry_budget import RetryBudget

__all__ = [
    "Admission",
    "BreakerStore",
    "BucketStore",
    "BudgetStore",
    "DeadLetterStore",
    "FailurePolicy",
    "JobRecord",
    "MemoryStorage",
    "QueueStore",
    "Storage",
    "StorageUnavailable",
]

#: ``(state, epoch)``: a call admitted in one epoch cannot change a later one.
Phase = tuple["BreakerState", int]


class FailurePolicy(enum.Enum):
    """What a component does when its shared storage cannot be reached.

    ``FAIL_OPEN`` allows (a bucket grants, a breaker admits without recording, a
    budget allows the retry) and emits ``storage.unavailable``; ``FAIL_CLOSED`` emits
    the event and raises ``StorageUnavailable``. Queues and dead-letter queues always
    refuse: a job that could not be stored is never reported as stored.
    """

    FAIL_OPEN = "fail_open"
    FAIL_CLOSED = "fail_closed"


class StorageUnavailable(ResilienceError):
    """The shared storage could not be reached; nothing was allowed on its behalf."""

    recoverable = True

    def __init__(
        self,
        message: str,
        *,
        storage: str,
        operation: str,
        context: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.storage = storage
        self.operation = operation


class Admission(NamedTuple):
    """A breaker store's answer to "may I call?": ``retry_after < 0`` means yes."""

    phase: Phase
    retry_after: float
    consecutive: int
    changes: list[tuple[BreakerState, BreakerState]]


class JobRecord(NamedTuple):
    """A job as a queue store holds it (``payload`` is JSON text)."""

    job_id: str
    payload: str
    priority: str
    user: str
    attempts: int
    enqueued_at: float
    error: str


class BucketStore(Protocol):
    """A token bucket's tokens, shared by every bucket of the same name."""

    def take(self, n: float) -> bool:
        """Take ``n`` tokens if they are there now."""
        ...

    def reserve(self, n: float) -> float:
        """Take ``n`` tokens (returns 0.0) or the seconds until they will be there."""
        ...

    def peek(self) -> float:
        """Tokens available now."""
        ...


class BreakerStore(Protocol):
    """A circuit breaker's state, window and half-open trials."""

    def admit(self) -> Admission:
        """Admit a call (taking a half-open trial slot) or say when to retry."""
        ...

    def record(self, phase: Phase, failed: bool, slow: bool
               ) -> list[tuple[BreakerState, BreakerState]]:
        """Record the outcome of a call admitted in ``phase``; returns the transitions."""
        ...

    def release(self, phase: Phase) -> None:
        """A half-open trial ended without a verdict: free its slot."""
        ...

    def state(self) -> tuple[BreakerState, list[tuple[BreakerState, BreakerState]]]:
        """The state now (OPEN turns HALF_OPEN once due) and the transitions made."""
        ...

    def metrics(self) -> dict[str, float]:
        """The ``CircuitBreaker.metrics`` numbers."""
        ...

    def force(self, state: BreakerState) -> list[tuple[BreakerState, BreakerState]]:
        """Move to ``state`` now (manual trip or reset)."""
        ...


class BudgetStore(Protocol):
    """A retry budget's per-slot counts of calls and retries."""

    def record_call(self) -> None:
        """Count a first attempt."""
        ...

    def try_spend(self) -> bool:
        """Take one retry, or ``False`` when the budget is used up."""
        ...

    def available(self) -> int:
        """Retries the budget would allow now."""
        ...


class DeadLetterStore(Protocol):
    """A dead-letter queue's jobs (payloads are JSON text)."""

    def add(self, job_id: str, payload: str, error: str, attempts: int) -> None:
        """Store (or replace) a job."""
        ...

    def rows(self, *, limit: int | None = None, job_id: str | None = None
             ) -> list[tuple[str, str, str, int, float, float]]:
        """``(job_id, payload, error, attempts, added_at, updated_at)``, oldest first."""
        ...

    def count(self) -> int:
        """How many jobs are held."""
        ...

    def settle(self, job_id: str, error: str | None) -> None:
        """Remove a delivered job (``error=None``) or count one more failed attempt."""
        ...

    def purge(self, *, older_than: float | None, job_ids: Sequence[str] | None) -> list[str]:
        """Remove jobs by age and/or id; returns the ids removed."""
        ...


class QueueStore(Protocol):
    """A job queue's jobs: ready by priority, leased, and on their way to dead letters."""

    def enqueue(self, job: JobRecord, *, max_size: int, shed: bool,
                user_limit: tuple[float, float] | None) -> tuple[str, object]:
        """Store a job: ``("ok", None)``, ``("dup", None)``, ``("full", size)``,
        ``("limited", wait)`` or ``("shed", the JobRecord shed for it)``."""
        ...

    def dequeue(self, lease: str, *, visibility_timeout: float, max_attempts: int
                ) -> tuple[JobRecord | None, list[str], list[JobRecord]]:
        """Lease the next job; first put expired leases back (or on the way to dead
        letters). Returns the job, the ids put back and the jobs to dead-letter."""
        ...

    def ack(self, job_id: str, lease: str) -> bool:
        """Forget a job whose lease is current; ``False`` when it is not."""
        ...

    def fail(self, job_id: str, lease: str, error: str, *, max_attempts: int
             ) -> tuple[str, JobRecord | None]:
        """``("retry", None)``, ``("dead", record)`` or ``("stale", None)``."""
        ...

    def bury(self, job_ids: Sequence[str]) -> None:
        """Forget jobs that the dead-letter queue now holds."""
        ...

    def stats(self) -> dict[str, int]:
        """Jobs ready per priority, leased and dying."""
        ...


class Storage(Protocol):
    """Where components keep state: one store per component kind and name."""

    name: str

    def bucket_store(self, bucket: TokenBucket) -> BucketStore | None:
        """The store of ``bucket`` (``None``: the bucket keeps its own state)."""
        ...

    def breaker_store(self, breaker: CircuitBreaker) -> BreakerStore | None:
        """The store of ``breaker`` (``None``: the breaker keeps its own state)."""
        ...

    def budget_store(self, budget: RetryBudget) -> BudgetStore | None:
        """The store of ``budget`` (``None``: the budget keeps its own counts)."""
        ...

    def dead_letter_store(self, queue: DeadLetterQueue) -> DeadLetterStore | None:
        """The store of ``queue`` (``None``: the queue's own SQLite file)."""
        ...

    def queue_store(self, queue: JobQueue) -> QueueStore:
        """The store of a job queue."""
        ...


class MemoryStorage:
    """State in this process (the default): each component keeps its own, as it does
    without a storage; job queues keep theirs here, shared by name."""

    def __init__(self, *, name: str = "memory") -> None:
        self.name = name
        self._queues: dict[str, QueueStore] = {}
        self._lock = threading.Lock()

    def bucket_store(self, bucket: TokenBucket) -> None:
        """``None``: the bucket keeps its own tokens."""
        return None

    def breaker_store(self, breaker: CircuitBreaker) -> None:
        """``None``: the breaker keeps its own state."""
        return None

    def budget_store(self, budget: RetryBudget) -> None:
        """``None``: the budget keeps its own counts."""
        return None

    def dead_letter_store(self, queue: DeadLetterQueue) -> None:
        """``None``: the queue keeps its jobs in its SQLite file."""
        return None

    def queue_store(self, queue: JobQueue) -> QueueStore:
        """The in-process store of the queue named ``queue.name``."""
        from pytest_resilience._jobqueue import MemoryQueueStore

        with self._lock:
            store = self._queues.get(queue.name)
            if store is None:
                store = self._queues[queue.name] = MemoryQueueStore(queue.clock)
            return store

    def __repr__(self) -> str:
        return f"MemoryStorage(name={self.name!r})"
