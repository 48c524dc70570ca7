"""JobQueue: priorities, bounds and overflow, per-user limits, leases, redelivery, dead
letters. Each test runs on both backends (tests/components/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_resilience import (
    DeadLetterQueue,
    Job,
    JobQueue,
    MemoryStorage,
    QueueFull,
    RateLimitExceeded,
    Storage,
    VirtualClock,
    recording,
)


@pytest.fixture
def dead(storage: Storage, tmp_path: Path, clock: VirtualClock) -> Iterator[DeadLetterQueue]:
    path = tmp_path / "dead.db" if isinstance(storage, MemoryStorage) else None
    with DeadLetterQueue(path, storage=storage, clock=clock, name="dead") as queue:
        yield queue


def make(storage: Storage, dead: DeadLetterQueue, clock: VirtualClock, **kwargs: Any
         ) -> JobQueue:
    return JobQueue(kwargs.pop("name", "jobs"), storage=storage, dead_letter=dead, clock=clock,
                    **kwargs)


def drain(queue: JobQueue) -> list[Any]:
    payloads = []
    for _ in range(100):
        job = queue.dequeue()
        if job is None:
            break
        payloads.append(job.payload)
        assert queue.ack(job)
    return payloads


def test_highest_priority_first_then_oldest_first(
    storage: Storage, dead: DeadLetterQueue, clock: VirtualClock
) -> None:
    queue = make(storage, dead, clock)
    for n, priority in enumerate(["low", "normal", "high", "low", "high", "normal"]):
        queue.enqueue({"n": n}, priority=priority)  # type: ignore[arg-type]
    assert queue.stats() == {"high": 2, "normal": 2, "low": 2, "leased": 0, "dying": 0}
    assert [p["n"] for p in drain(queue)] == [2, 4, 1, 5, 0, 3]
    assert len(queue) == 0


def test_full_queue_rejects_with_a_clear_error(
    storage: Storage, dead: DeadLetterQueue, clock: VirtualClock
) -> None:
    queue = make(storage, dead, clock, max_size=2)
    queue.enqueue(1)
    leased = queue.dequeue()  # a leased job still counts toward max_size
    assert leased is not None
    queue.enqueue(2)
    with recording() as history, pytest.raises(QueueFull) as info:
        queue.enqueue(3, priority="high", job_id="third")
    assert str(info.value) == (
        "queue 'jobs' is full (2 of 2 jobs) and overflow='reject' refused a high job. Retry "
        "later, raise max_size, or pass overflow='shed' to drop lower-priority jobs instead.")
    assert info.value.size == 2
    assert history.select("queue.rejected")[0].attrs == {
        "reason": "full", "job_id": "third", "priority": "high", "user": None}
    assert queue.ack(leased)
    queue.enqueue(3)  # room again


def test_shed_moves_the_newest_lowest_priority_job_to_dead_letters(
    storage: Storage, dead: DeadLetterQueue, clock: VirtualClock
) -> None:
    queue = make(storage, dead, clock, max_size=3, overflow="shed")
    queue.enqueue("old low", priority="low", job_id="a")
    queue.enqueue("new low", priority="low", job_id="b")
    queue.enqueue("normal", priority="normal", job_id="c")
    with recording() as history:
        queue.enqueue("urgent", priority="high", job_id="d")
    assert history.select("queue.shed")[0].attrs == {
        "job_id": "b", "priority": "low", "for_job": "d"}
    shed = dead.get("b")
    assert shed is not None
    assert (shed.payload, shed.error, shed.attempts) == ("new low", "shed: the queue was full", 0)
    with pytest.raises(QueueFull, match="overflow='shed' refused a low job"):
        queue.enqueue("another low", priority="low")  # nothing lower to shed for it
    queue.enqueue("second normal", priority="normal", job_id="e")  # sheds "a"
    assert [j.job_id for j in dead.list()] == ["b", "a"]
    assert drain(queue) == ["urgent", "normal", "second normal"]
    assert queue.stats()["dying"] == 0


def test_per_user_rate_limit(storage: Storage, dead: DeadLetterQueue, clock: VirtualClock) -> None:
    queue = make(storage, dead, clock, user_rate=(1.0, 2))
    queue.enqueue(1, user="alice")
    queue.enqueue(2, user="alice")
    with recording() as history, pytest.raises(RateLimitExceeded) as info:
        queue.enqueue(3, user="alice", job_id="x")
    assert str(info.value) == ("queue 'jobs': user 'alice' is over its rate limit (1.0, 2.0); "
                               "next job accepted in 1.000s")
    assert info.value.retry_after == 1.0
    assert history.select("queue.rejected")[0].attrs["reason"] == "rate_limited"
    queue.enqueue(4, user="bob")  # another user has its own bucket
    queue.enqueue(5)  # no user, no limit
    clock.advance(1.0)
    queue.enqueue(6, user="alice")
    assert sorted(drain(queue)) == [1, 2, 4, 5, 6]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_expired_lease_is_delivered_again_first_and_old_lease_cannot_ack(
    storage: Storage, dead: DeadLetterQueue, clock: VirtualClock, mode: str
) -> None:
    queue = make(storage, dead, clock, visibility_timeout=10.0)
    first = queue.enqueue("first")
    queue.enqueue("second")

    def run(method: str, *args: Any) -> Any:
        if mode == "sync":
            return getattr(queue, method)(*args)
        return asyncio.run(getattr(queue, "a" + method)(*args))

    with recording() as history:
        taken = run("dequeue")
        assert (taken.job_id, taken.attempts) == (first, 1)
        clock.advance(10.0)  # the worker died: its lease expires
        again = run("dequeue")
    assert (again.job_id, again.attempts, again.payload) == (first, 2, "first")
    assert again.lease != taken.lease
    assert history.select("queue.redelivered")[0].attrs == {"job_id": first, "reason": "expired"}
    assert run("ack", taken) is False  # the first delivery no longer owns the job
    assert run("ack", again) is True
    assert run("fail", again, "late") == "stale"
    assert drain(queue) == ["second"]


def test_failed_job_is_retried_then_dead_lettered_after_max_attempts(
    storage: Storage, dead: DeadLetterQueue, clock: VirtualClock
) -> None:
    queue = make(storage, dead, clock, max_attempts=2)
    queue.enqueue({"order": 7}, job_id="j")
    queue.enqueue("other")
    with recording() as history:
        job = queue.dequeue()
        assert job is not None
        assert queue.fail(job, ValueError("bad input")) == "retry"
        job = queue.dequeue()  # delivered again first in line
        assert job is not None
        assert (job.job_id, job.attempts) == ("j", 2)
        assert queue.fail(job, "still bad") == "dead"
    assert [e.kind for e in history if e.kind.startswith("queue.")] == [
        "queue.dequeued", "queue.failed", "queue.redelivered", "queue.dequeued",
        "queue.failed", "queue.dead"]
    assert history.select("queue.dead")[0].attrs == {
        "job_id": "j", "attempts": 2, "error": "still bad"}
    kept = dead.get("j")
    assert kept is not None
    assert (kept.payload, kept.error, kept.attempts) == ({"order": 7}, "still bad", 2)
    assert queue.stats() == {"high": 0, "normal": 1, "low": 0, "leased": 0, "dying": 0}


def test_lease_expiring_on_the_last_attempt_dead_letters_the_job(
    storage: Storage, dead: DeadLetterQueue, clock: VirtualClock
) -> None:
    queue = make(storage, dead, clock, max_attempts=1, visibility_timeout=5.0)
    queue.enqueue("x", job_id="x")
    assert queue.dequeue() is not None
    clock.advance(5.0)
    assert queue.dequeue() is None
    kept = dead.get("x")
    assert kept is not None
    assert kept.error == "visibility timeout expired on attempt 1"
    assert len(queue) == 0


def test_same_id_twice_is_stored_once_and_queues_of_one_name_share_jobs(
    storage: Storage, dead: DeadLetterQueue, clock: VirtualClock
) -> None:
    producer = make(storage, dead, clock)
    consumer = make(storage, dead, clock)
    assert producer.enqueue("a", job_id="same") == "same"
    assert producer.enqueue("a again", job_id="same") == "same"
    assert len(consumer) == 1
    assert drain(consumer) == ["a"]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # a name per example
@given(ops=st.lists(st.sampled_from(["put", "put_high", "take", "ack", "fail", "wait"]),
                    max_size=40))
def test_no_job_is_ever_lost(
    storage: Storage, tmp_path: Path, clock: VirtualClock, ops: list[str]
) -> None:
    name = uuid.uuid4().hex
    path = tmp_path / f"{name}.db" if isinstance(storage, MemoryStorage) else None
    dead = DeadLetterQueue(path, storage=storage, name=name, clock=clock)
    queue = make(storage, dead, clock, name=name, max_size=5, overflow="shed",
                 max_attempts=2, visibility_timeout=3.0)
    put: set[str] = set()
    acked: set[str] = set()
    held: list[Job] = []
    for op in ops:
        if op.startswith("put"):
            with contextlib.suppress(QueueFull):
                put.add(queue.enqueue(op, priority="high" if op == "put_high" else "low"))
        elif op == "take":
            job = queue.dequeue()
            if job is not None:
                held.append(job)
        elif op == "ack" and held:
            job = held.pop(0)
            if queue.ack(job):
                acked.add(job.job_id)
        elif op == "fail" and held:
            queue.fail(held.pop(0), "boom")
        elif op == "wait":
            clock.advance(2.0)
    while (job := queue.dequeue()) is not None or held:
        if job is None:
            clock.advance(3.0)  # the jobs still held by "dead workers" come back
            held.clear()
            continue
        if queue.ack(job):
            acked.add(job.job_id)
    lettered = {j.job_id for j in dead.list()}
    dead.close()
    assert acked | lettered == put  # every job was handled or dead-lettered
    assert not acked & lettered
    assert len(queue) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "name='' is not a queue name. Pass a non-empty string."),
        ({"overflow": "drop"}, "overflow='drop' is not an overflow policy. Pass 'reject'"),
        ({"max_size": 0}, "max_size=0 is not a valid count. Pass an integer >= 1."),
        ({"max_attempts": True}, "max_attempts=True is not a valid count. Pass an integer >= 1."),
        ({"visibility_timeout": 0},
         "visibility_timeout=0 is not a valid number of seconds. Pass seconds > 0."),
        ({"user_rate": 5}, "user_rate=5 is not (rate, capacity)."),
        ({"user_rate": (1, -1)}, "user_rate[1]=-1 is not a capacity. Pass a number > 0."),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], message: str, tmp_path: Path) -> None:
    with DeadLetterQueue(tmp_path / "d.db") as dead, \
            pytest.raises((ValueError, TypeError)) as info:
        JobQueue(dead_letter=dead, **kwargs)
    assert str(info.value).startswith(message)


def test_bad_arguments_to_enqueue_and_a_missing_dead_letter_queue(tmp_path: Path) -> None:
    with pytest.raises(TypeError) as missing:
        JobQueue(dead_letter=None)  # type: ignore[arg-type]
    assert str(missing.value) == ("dead_letter=None is not a dead-letter queue. Pass a "
                                  "DeadLetterQueue: jobs that keep failing must go somewhere.")
    with DeadLetterQueue(tmp_path / "d.db") as dead:
        queue = JobQueue(dead_letter=dead)
        with pytest.raises(ValueError, match=r"priority='urgent' is not a priority\."):
            queue.enqueue(1, priority="urgent")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"payload=\{1\} is not JSON-serialisable"):
            queue.enqueue({1})
