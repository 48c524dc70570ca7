"""Redis keys are namespaced under the storage's ``prefix`` and expire when idle (issue 19).

A real ``redis-server`` (the ``redis_server`` fixture). Expiry is Redis' own clock, which a
test cannot move, so the tests read ``PTTL`` instead of waiting: every key of a bucket,
breaker or budget carries a TTL of at most ``idle_ttl`` (or the time its state takes to
become a fresh one's, if later) that each use renews; queue and dead-letter keys never
expire.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_resilience import (
    CircuitBreaker,
    DeadLetterQueue,
    JobQueue,
    RateLimiter,
    RedisStorage,
    RetryBudget,
    TokenBucket,
    VirtualClock,
)

IDLE_TTL = 30.0


@pytest.fixture
def server(redis_server: Any) -> Any:
    redis_server.flush()
    return redis_server


@pytest.fixture
def client(server: Any) -> Iterator[Any]:
    with server.client() as redis_client:
        yield redis_client


def _storage(server: Any, prefix: str) -> RedisStorage:
    return RedisStorage(server.url, prefix=prefix, idle_ttl=IDLE_TTL, time="clock")


def _keys(client: Any) -> list[str]:
    return sorted(key.decode() for key in client.keys("*"))


def test_a_limiters_key_carries_the_custom_prefix_and_an_idle_ttl(
        server: Any, client: Any) -> None:
    storage = _storage(server, "svc-a:")
    clock = VirtualClock()
    try:
        limiter = RateLimiter({"search": (1.0, 5)}, default=(2.0, 4), clock=clock,
                              storage=storage)
        assert limiter.try_acquire("search")
        assert limiter.try_acquire("user-1")
        keys = _keys(client)
        assert len(keys) == 2
        assert all(key.startswith("svc-a:bucket:") for key in keys)
        for key in keys:
            assert 0 < client.pttl(key) <= IDLE_TTL * 1000
    finally:
        storage.close()


def test_each_use_renews_the_idle_ttl(server: Any, client: Any) -> None:
    storage = _storage(server, "svc-a:")
    try:
        bucket = TokenBucket(rate=1.0, capacity=5, name="api", clock=VirtualClock(),
                             storage=storage)
        assert bucket.try_acquire()
        (key,) = _keys(client)
        client.pexpire(key, 1000)  # as if the bucket had been idle for 29 seconds
        assert bucket.try_acquire()
        assert client.pttl(key) > 1000
    finally:
        storage.close()


def test_a_bucket_idle_ttl_covers_its_refill_time(server: Any, client: Any) -> None:
    storage = _storage(server, "slow:")
    try:
        bucket = TokenBucket(rate=0.01, capacity=5, name="api", clock=VirtualClock(),
                             storage=storage)
        assert bucket.try_acquire()
        (key,) = _keys(client)
        assert IDLE_TTL * 1000 < client.pttl(key) <= 500_000  # 5 tokens at 0.01/s
    finally:
        storage.close()


def test_two_prefixes_on_one_server_never_share_state(server: Any, client: Any) -> None:
    first, second = _storage(server, "team-a:"), _storage(server, "team-b:")
    clock = VirtualClock()
    try:
        a = TokenBucket(rate=1.0, capacity=2, name="api", clock=clock, storage=first)
        b = TokenBucket(rate=1.0, capacity=2, name="api", clock=clock, storage=second)
        assert [a.try_acquire() for _ in range(3)] == [True, True, False]
        assert [b.try_acquire() for _ in range(3)] == [True, True, False]
        keys = _keys(client)
        assert len(keys) == 2
        assert [key.split(":")[0] for key in keys] == ["team-a", "team-b"]
    finally:
        first.close()
        second.close()


def _fail() -> None:
    raise ValueError("model down")


def test_every_component_writes_under_the_prefix_and_only_queues_never_expire(
        server: Any, client: Any) -> None:
    storage = _storage(server, "ml:")
    clock = VirtualClock()
    try:
        breaker = CircuitBreaker(name="model", failure_threshold=1, recovery_timeout=5.0,
                                 clock=clock, storage=storage)
        with pytest.raises(ValueError):
            breaker.call(_fail)
        budget = RetryBudget(name="calls", clock=clock, storage=storage)
        budget.record_call()
        assert budget.try_spend()
        dead = DeadLetterQueue(name="dead", clock=clock, storage=storage)
        queue = JobQueue("jobs", dead_letter=dead, max_attempts=1, clock=clock,
                         storage=storage)
        queue.enqueue({"n": 1})
        job = queue.dequeue()
        assert job is not None
        assert queue.fail(job, "boom") == "dead"
        queue.enqueue({"n": 2}, priority="high")  # waits in the queue
        keys = _keys(client)
        assert all(key.startswith("ml:") for key in keys)
        expiring = {key for key in keys if client.pttl(key) > 0}
        assert {key.split(":")[1] for key in expiring} == {"breaker", "budget"}
        assert all(client.pttl(key) <= IDLE_TTL * 1000 for key in expiring)
        lasting = set(keys) - expiring
        assert {key.split(":")[1] for key in lasting} == {"queue", "deadletter"}
        assert all(client.pttl(key) == -1 for key in lasting)
    finally:
        storage.close()
