"""``JobQueue``: a bounded priority queue with leases, redelivery and dead letters.

A dequeued job is leased for ``visibility_timeout`` seconds: acknowledged, it is gone;
failed, or its lease expired (the worker died), it is delivered again, first in line,
until ``max_attempts`` deliveries, after which it moves to the dead-letter queue. A
job reaches the dead-letter queue before the queue forgets it (at least once, and the
job id makes a repeat harmless), so no job is ever lost. ``MemoryQueueStore`` keeps
the jobs in this process; ``RedisStorage`` shares them between processes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._errors import RateLimitExceeded, ResilienceError
from pytest_resilience._events import emit
from pytest_resilience._ratelimit import TokenBucket
from pytest_resilience._storage import JobRecord, MemoryStorage
from pytest_resilience.kinds import (
    QUEUE_ACKED,
    QUEUE_DEAD,
    QUEUE_DEQUEUED,
    QUEUE_ENQUEUED,
    QUEUE_FAILED,
    QUEUE_REDELIVERED,
    QUEUE_REJECTED,
    QUEUE_SHED,
)

if TYPE_CHECKING:
    from pytest_resilience._deadletter import DeadLetterQueue
    from pytest_resilience._storage import QueueStore, Storage

__all__ = ["Job", "JobQueue", "MemoryQueueStore", "QueueFull"]

T = TypeVar("T")
Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[Priority, ...] = ("high", "normal", "low")
_RANK: dict[str, int] = {p: i for i, p in enumerate(PRIORITIES)}
_OVERFLOW = ("reject", "shed")


class QueueFull(ResilienceError):
    """The queue holds ``max_size`` jobs and the overflow policy refused this one."""

    recoverable = True

    def __init__(self, message: str, *, name: str, size: int,
                 context: Mapping[str, object] | None = None) -> None:
        super().__init__(message, context=context)
        self.name = name
        self.size = size


@dataclass(frozen=True, slots=True)
class Job:
    """One delivery of a job. ``lease`` proves it: ``ack``/``fail`` with a lease that
    is no longer current (the job was delivered again) change nothing."""

    job_id: str
    payload: Any
    priority: Priority
    user: str | None
    attempts: int
    enqueued_at: float
    lease: str


class MemoryQueueStore:
    """The jobs of one queue in this process (``MemoryStorage``'s queue store)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._ready: dict[str, deque[str]] = {p: deque() for p in PRIORITIES}
        self._leased: dict[str, float] = {}
        self._dying: dict[str, float] = {}
        self._users: dict[str, TokenBucket] = {}

    def _record(self, job_id: str) -> JobRecord:
        j = self._jobs[job_id]
        return JobRecord(job_id, j["p"], j["r"], j["u"], j["a"], j["t"], j["e"])

    def _bucket(self, user: str, limit: tuple[float, float]) -> TokenBucket:
        bucket = self._users.get(user)
        if bucket is None or (bucket.rate, bucket.capacity) != limit:
            bucket = self._users[user] = TokenBucket(*limit, name=user, clock=self._clock)
        return bucket

    def enqueue(self, job: JobRecord, *, max_size: int, shed: bool,
                user_limit: tuple[float, float] | None) -> tuple[str, object]:
        with self._lock:
            if job.job_id in self._jobs:
                return "dup", None
            size = len(self._leased) + sum(len(q) for q in self._ready.values())
            victim_priority = None
            if size >= max_size:
                if shed:
                    lower = PRIORITIES[_RANK[job.priority] + 1:]
                    victim_priority = next((p for p in reversed(lower) if self._ready[p]), None)
                if victim_priority is None:
                    return "full", size
            if job.user and user_limit is not None:
                wait = self._bucket(job.user, user_limit)._wait_for(1)
                if wait > 0:
                    return "limited", wait
            result: tuple[str, object] = ("ok", None)
            now = self._clock.monotonic()
            if victim_priority is not None:
                victim = self._ready[victim_priority].pop()
                self._jobs[victim]["e"] = "shed: the queue was full"
                self._dying[victim] = now
                result = ("shed", self._record(victim))
            self._jobs[job.job_id] = {"p": job.payload, "r": job.priority, "u": job.user,
                                      "a": 0, "t": now, "e": "", "l": ""}
            self._ready[job.priority].append(job.job_id)
            return result

    def dequeue(self, lease: str, *, visibility_timeout: float, max_attempts: int
                ) -> tuple[JobRecord | None, list[str], list[JobRecord]]:
        with self._lock:
            now = self._clock.monotonic()
            redelivered: list[str] = []
            dead: list[JobRecord] = []
            expired = sorted((d, i) for i, d in self._leased.items() if d <= now)
            for _, job_id in expired:
                del self._leased[job_id]
                job = self._jobs[job_id]
                job["l"] = ""
                if job["a"] >= max_attempts:
                    job["e"] = f"visibility timeout expired on attempt {job['a']}"
                    self._dying[job_id] = now
                    dead.append(self._record(job_id))
                else:
                    self._ready[job["r"]].appendleft(job_id)
                    redelivered.append(job_id)
            stale = sorted((t, i) for i, t in self._dying.items() if t <= now - visibility_timeout)
            for _, job_id in stale:
                self._dying[job_id] = now
                dead.append(self._record(job_id))
            leased = None
            for priority in PRIORITIES:
                if self._ready[priority]:
                    job_id = self._ready[priority].popleft()
                    job = self._jobs[job_id]
                    job["a"] += 1
                    job["l"] = lease
                    self._leased[job_id] = now + visibility_timeout
                    leased = self._record(job_id)
                    break
            return leased, redelivered, dead

    def ack(self, job_id: str, lease: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job["l"] != lease:
                return False
            self._leased.pop(job_id, None)
            del self._jobs[job_id]
            return True

    def fail(self, job_id: str, lease: str, error: str, *, max_attempts: int
             ) -> tuple[str, JobRecord | None]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job["l"] != lease:
                return "stale", None
            self._leased.pop(job_id, None)
            job["l"], job["e"] = "", error
            if job["a"] >= max_attempts:
                self._dying[job_id] = self._clock.monotonic()
                return "dead", self._record(job_id)
            self._ready[job["r"]].appendleft(job_id)
            return "retry", None

    def bury(self, job_ids: Sequence[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                if self._dying.pop(job_id, None) is not None:
                    del self._jobs[job_id]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**{p: len(self._ready[p]) for p in PRIORITIES},
                    "leased": len(self._leased), "dying": len(self._dying)}


class JobQueue:
    """A bounded priority queue of JSON jobs with leases, redelivery and dead letters.

    ``enqueue`` takes ``priority`` "high", "normal" or "low"; ``dequeue`` leases the
    oldest job of the highest priority. At ``max_size`` jobs (ready and leased),
    ``overflow="reject"`` refuses a new job with ``QueueFull``; ``overflow="shed"`` makes
    room by moving the newest job of the lowest priority below the new one to the
    dead-letter queue (and refuses the new job when there is none). ``user_rate=(rate,
    capacity)`` limits each user's enqueues with a token bucket (``RateLimitExceeded``).
    A job delivered ``max_attempts`` times that fails (or whose lease expires) goes to
    ``dead_letter``. Sync and async (``aenqueue``, ``adequeue``, ``aack``, ``afail``).
    """

    def __init__(
        self,
        name: str = "jobs",
        *,
        dead_letter: DeadLetterQueue,
        storage: Storage | None = None,
        max_size: int = 10_000,
        overflow: Literal["reject", "shed"] = "reject",
        visibility_timeout: float = 30.0,
        max_attempts: int = 3,
        user_rate: tuple[float, float] | None = None,
        clock: Clock | None = None,
    ) -> None:
        name = _validate.text(name, "name", what="a queue name")
        if overflow not in _OVERFLOW:
            raise ValueError(f"overflow={_validate.show(overflow)} is not an overflow policy. "
                             "Pass 'reject' (refuse new jobs with QueueFull) or 'shed' (drop "
                             "the newest lowest-priority job to the dead-letter queue).")
        if not callable(getattr(dead_letter, "add", None)):
            raise TypeError(f"dead_letter={_validate.show(dead_letter)} is not a dead-letter "
                            "queue. Pass a "
                            "DeadLetterQueue: jobs that keep failing must go somewhere.")
        if user_rate is not None:
            if not isinstance(user_rate, tuple) or len(user_rate) != 2:
                raise ValueError(f"user_rate={_validate.show(user_rate)} is not (rate, "
                                 "capacity). Pass a tuple such as (10.0, 20) or None.")
            user_rate = (_validate.seconds(user_rate[0], "user_rate[0]", positive=True,
                                           what="a rate", accepted="jobs per second > 0"),
                         _validate.seconds(user_rate[1], "user_rate[1]", positive=True,
                                           what="a capacity", accepted="a number > 0"))
        self.name = name
        self.max_size = _validate.count(max_size, "max_size")
        self.overflow = overflow
        self.visibility_timeout = _validate.seconds(visibility_timeout, "visibility_timeout",
                                                    positive=True, accepted="seconds > 0")
        self.max_attempts = _validate.count(max_attempts, "max_attempts")
        self.user_rate = user_rate
        self.dead_letter = dead_letter
        self.clock: Clock = _validate.clock(clock)
        self.storage: Storage = (_validate.storage(storage) if storage is not None
                                 else MemoryStorage())
        self._store: QueueStore = self.storage.queue_store(self)
        self._leases = itertools.count()

    # -- producing -------------------------------------------------------------------
    def enqueue(self, payload: Any, *, priority: Priority = "normal", user: str | None = None,
                job_id: str | None = None) -> str:
        """Add a job (``payload`` must be JSON-serialisable); returns its id.

        Enqueuing an id the queue already holds changes nothing and returns the id,
        so repeating an enqueue whose reply was lost is safe.
        """
        if priority not in PRIORITIES:
            raise ValueError(f"priority={priority!r} is not a priority. Pass 'high', 'normal' "
                             "or 'low'.")
        try:
            body = json.dumps(payload)
        except TypeError as exc:
            raise TypeError(f"payload={payload!r} is not JSON-serialisable ({exc}). Pass plain "
                            "builtins (dict, list, str, numbers).") from None
        job = JobRecord(job_id or uuid.uuid4().hex, body, priority, user or "", 0, 0.0, "")
        status, detail = self._store.enqueue(job, max_size=self.max_size,
                                             shed=self.overflow == "shed",
                                             user_limit=self.user_rate)
        attrs: dict[str, Any] = {"job_id": job.job_id, "priority": priority, "user": user}
        if status == "full":
            emit(QUEUE_REJECTED, self.name, self.clock, reason="full", **attrs)
            raise QueueFull(
                f"queue {self.name!r} is full ({detail} of {self.max_size} jobs) and "
                f"overflow={self.overflow!r} refused a {priority} job. Retry later, raise "
                "max_size, or pass overflow='shed' to drop lower-priority jobs instead.",
                name=self.name, size=detail if isinstance(detail, int) else -1,
                context={"priority": priority, "overflow": self.overflow},
            )
        if status == "limited":
            wait = detail if isinstance(detail, float) else 0.0
            emit(QUEUE_REJECTED, self.name, self.clock, reason="rate_limited", **attrs)
            raise RateLimitExceeded(
                f"queue {self.name!r}: user {user!r} is over its rate limit "
                f"{self.user_rate}; next job accepted in {wait:.3f}s",
                name=f"{self.name}:{user}", retry_after=wait, context={"user": user},
            )
        if status == "shed" and isinstance(detail, JobRecord):
            emit(QUEUE_SHED, self.name, self.clock, job_id=detail.job_id,
                 priority=detail.priority, for_job=job.job_id)
            self._bury([detail])
        if status != "dup":
            emit(QUEUE_ENQUEUED, self.name, self.clock, **attrs)
        return job.job_id

    # -- consuming -------------------------------------------------------------------
    def dequeue(self) -> Job | None:
        """Lease the next job (highest priority, oldest first), or ``None`` when none is
        ready. Expired leases are delivered again first, or dead-lettered."""
        lease = f"{uuid.uuid4().hex}:{next(self._leases)}"
        record, redelivered, dead = self._store.dequeue(
            lease, visibility_timeout=self.visibility_timeout, max_attempts=self.max_attempts)
        for job_id in redelivered:
            emit(QUEUE_REDELIVERED, self.name, self.clock, job_id=job_id, reason="expired")
        self._bury(dead)
        if record is None:
            return None
        emit(QUEUE_DEQUEUED, self.name, self.clock, job_id=record.job_id,
             priority=record.priority, attempts=record.attempts)
        priority = next(p for p in PRIORITIES if p == record.priority)
        return Job(record.job_id, json.loads(record.payload), priority, record.user or None,
                   record.attempts, record.enqueued_at, lease)

    def ack(self, job: Job) -> bool:
        """Forget a job that was handled; ``False`` when its lease is no longer current
        (it expired and the job was delivered again)."""
        done = self._store.ack(job.job_id, job.lease)
        if done:
            emit(QUEUE_ACKED, self.name, self.clock, job_id=job.job_id, attempts=job.attempts)
        return done

    def fail(self, job: Job, error: BaseException | str) -> Literal["retry", "dead", "stale"]:
        """Give a job back after a failed attempt: delivered again first in line
        (``"retry"``), or moved to the dead-letter queue after ``max_attempts``
        (``"dead"``); ``"stale"`` when its lease is no longer current."""
        message = error if isinstance(error, str) else repr(error)
        status, record = self._store.fail(job.job_id, job.lease, message,
                                          max_attempts=self.max_attempts)
        if status == "stale":
            return "stale"
        emit(QUEUE_FAILED, self.name, self.clock, job_id=job.job_id, attempts=job.attempts,
             error=message)
        if record is not None:
            self._bury([record])
            return "dead"
        emit(QUEUE_REDELIVERED, self.name, self.clock, job_id=job.job_id, reason="failed")
        return "retry"

    def _bury(self, records: Sequence[JobRecord]) -> None:
        """Hand jobs to the dead-letter queue, then let the queue forget them. A job
        whose hand-over fails stays on its way and is offered again by a later
        ``dequeue`` after ``visibility_timeout``."""
        handed: list[str] = []
        for r in records:
            try:
                self.dead_letter.add(json.loads(r.payload), error=r.error, attempts=r.attempts,
                                     job_id=r.job_id)
            except (ResilienceError, OSError, sqlite3.Error):
                continue  # kept on its way; offered again later
            handed.append(r.job_id)
            emit(QUEUE_DEAD, self.name, self.clock, job_id=r.job_id, attempts=r.attempts,
                 error=r.error)
        self._store.bury(handed)

    # -- inspecting ------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Jobs ready per priority ("high", "normal", "low"), "leased", and "dying"
        (handed to the dead-letter queue, not yet forgotten)."""
        return self._store.stats()

    def __len__(self) -> int:
        stats = self.stats()
        return sum(stats[p] for p in PRIORITIES) + stats["leased"]

    # -- asyncio ---------------------------------------------------------------------
    async def _thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def aenqueue(self, payload: Any, *, priority: Priority = "normal",
                       user: str | None = None, job_id: str | None = None) -> str:
        """``enqueue`` off the event loop (storage round trips run in its executor)."""
        return await self._thread(self.enqueue, payload, priority=priority, user=user,
                                  job_id=job_id)

    async def adequeue(self) -> Job | None:
        """``dequeue`` off the event loop."""
        return await self._thread(self.dequeue)

    async def aack(self, job: Job) -> bool:
        """``ack`` off the event loop."""
        return await self._thread(self.ack, job)

    async def afail(self, job: Job, error: BaseException | str
                    ) -> Literal["retry", "dead", "stale"]:
        """``fail`` off the event loop."""
        return await self._thread(self.fail, job, error)

    def __repr__(self) -> str:
        return (f"JobQueue({self.name!r}, storage={self.storage!r}, max_size={self.max_size}, "
                f"overflow={self.overflow!r})")

