"""Shared state in Redis, side by side with the peers, on one real ``redis-server``.

Groups: a token bucket's acquire (ours: one Lua script; the MULTI/WATCH design we did
not choose; ``limits``' Redis storage), the same under 4 contending threads, a circuit
breaker's closed-path call with its state in Redis (ours, pybreaker's
``CircuitRedisStorage``), and a job's enqueue + dequeue (ours, RQ). Each benchmark
records ``round_trips_per_op`` (commands sent to the server per operation, counted on
the client's connection; the goal is one). Run: ``bash scripts/bench.sh`` (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience import (
    CircuitBreaker,
    DeadLetterQueue,
    JobQueue,
    RedisStorage,
    TokenBucket,
)

redis = pytest.importorskip("redis")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HUGE = 10**9


class Counting(redis.Connection):  # type: ignore[misc]
    """A connection that counts what it sends: one send is one round trip."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        Counting.sent += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def client(redis_server: Any) -> Iterator[Any]:
    redis_server.flush()
    pool = redis.ConnectionPool.from_url(redis_server.url, connection_class=Counting)
    made = redis.Redis(connection_pool=pool)
    yield made
    made.close()
    pool.disconnect()


def round_trips(operation: Callable[[], object], n: int = 200) -> float:
    """Commands sent per call of ``operation`` (after one warm-up call)."""
    operation()
    before = Counting.sent
    for _ in range(n):
        operation()
    return (Counting.sent - before) / n


def measure(benchmark: Any, operation: Callable[[], object]) -> object:
    benchmark.extra_info["round_trips_per_op"] = round_trips(operation)
    return benchmark(operation)


class WatchBucket:
    """The token bucket as optimistic MULTI/WATCH transactions: the design not chosen.

    WATCH, HMGET, then MULTI/HSET/PEXPIRE/EXEC pipelined: three round trips, a retry on
    every conflicting write, and the client's clock (reading the server's TIME would be
    a fourth trip).
    """

    def __init__(self, client: Any, key: str, rate: float, capacity: float) -> None:
        self.client, self.key, self.rate, self.capacity = client, key, rate, capacity
        self.conflicts = 0
        self.ttl = math.ceil(max(600.0, capacity / rate) * 1000)

    def try_acquire(self, n: float = 1) -> bool:
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key)
                    tokens, last = pipe.hmget(self.key, "t", "l")
                    now = time.time()
                    tokens = self.capacity if tokens is None else float(tokens)
                    last = now if last is None else float(last)
                    if now > last:
                        tokens = min(self.capacity, tokens + (now - last) * self.rate)
                        last = now
                    granted = tokens >= n
                    pipe.multi()
                    pipe.hset(self.key, mapping={"t": repr(tokens - n if granted else tokens),
                                                 "l": repr(last)})
                    pipe.pexpire(self.key, self.ttl)
                    pipe.execute()
                    return granted
                except redis.WatchError:
                    self.conflicts += 1


# -- token bucket acquire ------------------------------------------------------------
@pytest.mark.benchmark(group="redis-bucket-acquire")
def test_ours_redis_bucket_try_acquire(benchmark: Any, client: Any) -> None:
    bucket = TokenBucket(HUGE, HUGE, name="bench", storage=RedisStorage(client))
    assert measure(benchmark, bucket.try_acquire)


@pytest.mark.benchmark(group="redis-bucket-acquire")
def test_multi_watch_bucket_try_acquire(benchmark: Any, client: Any) -> None:
    bucket = WatchBucket(client, "watch-bench", HUGE, HUGE)
    assert measure(benchmark, bucket.try_acquire)


@pytest.mark.benchmark(group="redis-bucket-acquire")
def test_limits_redis_moving_window_hit(benchmark: Any, client: Any) -> None:
    limits = pytest.importorskip("limits")
    storage = limits.storage.RedisStorage("redis://", connection_pool=client.connection_pool)
    strategy = limits.strategies.MovingWindowRateLimiter(storage)
    item = limits.parse("1000000/second")
    assert measure(benchmark, lambda: strategy.hit(item, "bench"))


@pytest.mark.benchmark(group="redis-bucket-acquire")
def test_limits_redis_fixed_window_hit(benchmark: Any, client: Any) -> None:
    limits = pytest.importorskip("limits")
    storage = limits.storage.RedisStorage("redis://", connection_pool=client.connection_pool)
    strategy = limits.strategies.FixedWindowRateLimiter(storage)
    item = limits.parse(f"{HUGE}/second")
    assert measure(benchmark, lambda: strategy.hit(item, "bench"))


@pytest.fixture
def contention() -> Iterator[Callable[[Callable[[], object]], None]]:
    """Start 3 threads hammering an operation until the benchmark is done."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(operation: Callable[[], object]) -> None:
        def hammer() -> None:
            while not stop.is_set():
                operation()

        threads.extend(threading.Thread(target=hammer) for _ in range(3))
        for t in threads:
            t.start()

    yield start
    stop.set()
    for t in threads:
        t.join(30)


@pytest.mark.benchmark(group="redis-bucket-acquire-4-threads")
def test_ours_redis_bucket_contended(benchmark: Any, client: Any, contention: Any) -> None:
    bucket = TokenBucket(HUGE, HUGE, name="bench", storage=RedisStorage(client))
    contention(bucket.try_acquire)
    assert benchmark(bucket.try_acquire)


@pytest.mark.benchmark(group="redis-bucket-acquire-4-threads")
def test_multi_watch_bucket_contended(benchmark: Any, client: Any, contention: Any) -> None:
    bucket = WatchBucket(client, "watch-bench", HUGE, HUGE)
    contention(bucket.try_acquire)
    calls = 0

    def counted() -> bool:
        nonlocal calls
        calls += 1
        return bucket.try_acquire()

    assert benchmark(counted)
    benchmark.extra_info["conflicts_per_op"] = bucket.conflicts / max(calls, 1)


# -- breaker call --------------------------------------------------------------------
def target() -> int:
    return 1


@pytest.mark.benchmark(group="redis-breaker-call")
def test_ours_redis_breaker_closed_call(benchmark: Any, client: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=5, name="bench", storage=RedisStorage(client))
    assert measure(benchmark, lambda: breaker.call(target)) == 1


@pytest.mark.benchmark(group="redis-breaker-call")
def test_ours_redis_breaker_rate_window_call(benchmark: Any, client: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.5, window_size=100,
                             name="bench-window", storage=RedisStorage(client))
    assert measure(benchmark, lambda: breaker.call(target)) == 1


@pytest.mark.benchmark(group="redis-breaker-call")
def test_pybreaker_redis_storage_call(benchmark: Any, client: Any) -> None:
    pybreaker = pytest.importorskip("pybreaker")
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace="bench")
    breaker = pybreaker.CircuitBreaker(fail_max=5, state_storage=storage)
    assert measure(benchmark, lambda: breaker.call(target)) == 1


@pytest.mark.benchmark(group="redis-breaker-call")
def test_in_process_breaker_call(benchmark: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=5)
    assert benchmark(breaker.call, target) == 1


# -- queue ---------------------------------------------------------------------------
@pytest.mark.benchmark(group="redis-queue-enqueue-dequeue")
def test_ours_redis_queue_enqueue_dequeue_ack(
    benchmark: Any, client: Any, tmp_path: Path
) -> None:
    storage = RedisStorage(client)
    queue = JobQueue("bench", storage=storage, max_size=HUGE,
                     dead_letter=DeadLetterQueue(storage=storage, name="bench-dead"))

    def cycle() -> bool:
        queue.enqueue({"n": 1})
        job = queue.dequeue()
        return job is not None and queue.ack(job)

    assert measure(benchmark, cycle)
    benchmark.extra_info["note"] = "3 operations: enqueue, dequeue (lease), ack"


@pytest.mark.benchmark(group="redis-queue-enqueue-dequeue")
def test_rq_enqueue_dequeue(benchmark: Any, client: Any) -> None:
    rq = pytest.importorskip("rq")
    queue = rq.Queue("bench", connection=client)

    def cycle() -> bool:
        queue.enqueue(target)
        found = rq.Queue.dequeue_any([queue], timeout=None, connection=client)
        return found is not None

    assert measure(benchmark, cycle)
    benchmark.extra_info["note"] = "2 operations: enqueue, dequeue (no completion)"
