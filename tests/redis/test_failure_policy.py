"""The failure policy under each network fault between a component and Redis.

Redis is real; the connection runs through a real ``FaultProxy``. ``down`` refuses
connections, ``reset`` resets them, ``timeout`` swallows requests (they never reach
Redis), ``latency`` delays replies past the client's timeout (the script *has* run).
Under every toxic a fail-open component allows and a fail-closed one refuses with
``StorageUnavailable``; both emit ``storage.unavailable``; and the shared state stays
valid: an operation applied at most once, never twice, and nothing half written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import pytest

from faults.network import FaultProxy, latency, reset_peer, timeout
from pytest_resilience import (
    CircuitBreaker,
    DeadLetterQueue,
    FailurePolicy,
    JobQueue,
    RedisStorage,
    RetryBudget,
    StorageUnavailable,
    TokenBucket,
    VirtualClock,
    recording,
)

TOXICS: dict[str, Callable[[FaultProxy], AbstractContextManager[Any]]] = {
    "down": lambda proxy: proxy.down(),
    "reset": lambda proxy: proxy.add_toxic(reset_peer(0), direction="downstream"),
    "timeout": lambda proxy: proxy.add_toxic(timeout(0), direction="upstream"),
    "latency": lambda proxy: proxy.add_toxic(latency(500), direction="downstream"),
}
#: Whether the operation reached Redis: never, always (the reply came too late), or it
#: depends on the race between the request and the reset.
APPLIED = {"down": {0}, "timeout": {0}, "latency": {1}, "reset": {0, 1}}
POLICIES = [FailurePolicy.FAIL_OPEN, FailurePolicy.FAIL_CLOSED]


class Rig:
    """A healthy storage and one through the proxy, on the same keys and clock."""

    def __init__(self, server: Any, proxy: FaultProxy, policy: FailurePolicy) -> None:
        self.proxy = proxy
        self.clock = VirtualClock()
        self.healthy = RedisStorage(server.url, time="clock")
        self.faulty = RedisStorage(f"redis://127.0.0.1:{proxy.port}/0", time="clock",
                                   policy=policy, timeout=0.2, name="redis-under-test")

    def close(self) -> None:
        self.healthy.close()
        self.faulty.close()


@pytest.fixture(params=POLICIES, ids=[p.value for p in POLICIES])
def rig(request: pytest.FixtureRequest, redis_server: Any, fault_proxy: Any) -> Iterator[Rig]:
    redis_server.flush()
    made = Rig(redis_server, fault_proxy(redis_server.address, name="redis"), request.param)
    try:
        yield made
    finally:
        made.close()


def refused(operation: str, owner: str) -> str:
    return (f"): {operation} on {owner!r} was refused (policy fail_closed). Check that Redis "
            "is reachable, or pass policy=FailurePolicy.FAIL_OPEN to allow instead.")


def check_event(history: Any, operation: str, policy: str) -> None:
    event = history.select("storage.unavailable")[0]
    assert event.attrs["storage"] == "redis-under-test"
    assert event.attrs["operation"] == operation
    assert event.attrs["policy"] == policy
    assert event.attrs["error"].split(":")[0] in {"ConnectionError", "TimeoutError"}


@pytest.mark.parametrize("toxic", list(TOXICS))
def test_token_bucket(rig: Rig, toxic: str) -> None:
    bucket = TokenBucket(1.0, 5, name="api", clock=rig.clock, storage=rig.faulty)
    assert bucket.try_acquire(2)
    with recording() as history, TOXICS[toxic](rig.proxy):
        if rig.faulty.policy is FailurePolicy.FAIL_OPEN:
            assert bucket.try_acquire() is True
        else:
            with pytest.raises(StorageUnavailable) as info:
                bucket.try_acquire()
            assert str(info.value).startswith("redis-under-test is unavailable (")
            assert str(info.value).endswith(refused("bucket.take", "api"))
            assert info.value.recoverable
    check_event(history, "bucket.take", rig.faulty.policy.value)
    shared = TokenBucket(1.0, 5, name="api", clock=rig.clock, storage=rig.healthy)
    assert {3.0 - shared.tokens} <= APPLIED[toxic]
    assert bucket.try_acquire()  # back to normal once the fault is gone


@pytest.mark.parametrize("toxic", list(TOXICS))
def test_circuit_breaker(rig: Rig, toxic: str) -> None:
    breaker = CircuitBreaker(failure_threshold=3, name="db", clock=rig.clock,
                             storage=rig.faulty)
    with pytest.raises(ConnectionError):
        breaker.call(_boom)
    calls: list[int] = []
    with recording() as history, TOXICS[toxic](rig.proxy):
        if rig.faulty.policy is FailurePolicy.FAIL_OPEN:
            assert breaker.call(lambda: calls.append(1) or "ok") == "ok"
            assert calls == [1]  # admitted; its outcome is not recorded
        else:
            with pytest.raises(StorageUnavailable) as info:
                breaker.call(lambda: calls.append(1))
            assert str(info.value).endswith(refused("breaker.admit", "db"))
            assert calls == []  # refused before the call
    check_event(history, "breaker.admit", rig.faulty.policy.value)
    shared = CircuitBreaker(failure_threshold=3, name="db", clock=rig.clock,
                            storage=rig.healthy)
    assert shared.metrics["consecutive_failures"] == 1
    assert breaker.state.value == "closed"


def _boom() -> None:
    raise ConnectionError("down")


def test_an_outcome_that_cannot_be_recorded_is_dropped_never_raised(rig: Rig) -> None:
    """Under either policy the call's own result (or exception) reaches the caller."""
    breaker = CircuitBreaker(failure_threshold=3, name="db", clock=rig.clock,
                             storage=rig.faulty)
    with pytest.raises(ConnectionError):
        breaker.call(_boom)  # a failure streak: the next outcome must be recorded
    with recording() as history, ExitStack() as redis_down:

        def succeed_as_redis_goes_down() -> str:
            redis_down.enter_context(rig.proxy.down())
            return "ok"

        assert breaker.call(succeed_as_redis_goes_down) == "ok"
    (event,) = history.select("storage.unavailable")
    assert (event.attrs["operation"], event.attrs["policy"]) == ("breaker.record", "dropped")
    shared = CircuitBreaker(failure_threshold=3, name="db", clock=rig.clock,
                            storage=rig.healthy)
    assert shared.metrics["consecutive_failures"] == 1  # the success was not recorded


@pytest.mark.parametrize("toxic", list(TOXICS))
def test_retry_budget(rig: Rig, toxic: str) -> None:
    budget = RetryBudget(ratio=1.0, min_retries=0, name="svc", clock=rig.clock,
                         storage=rig.faulty)
    budget.record_call()
    budget.record_call()
    with recording() as history, TOXICS[toxic](rig.proxy):
        if rig.faulty.policy is FailurePolicy.FAIL_OPEN:
            assert budget.try_spend() is True
        else:
            with pytest.raises(StorageUnavailable) as info:
                budget.try_spend()
            assert str(info.value).endswith(refused("budget.spend", "svc"))
    check_event(history, "budget.spend", rig.faulty.policy.value)
    shared = RetryBudget(ratio=1.0, min_retries=0, name="svc", clock=rig.clock,
                         storage=rig.healthy)
    assert {2 - shared.available} <= APPLIED[toxic]


@pytest.mark.parametrize("toxic", list(TOXICS))
def test_queue_always_refuses_and_repeating_is_safe(rig: Rig, toxic: str) -> None:
    dead = DeadLetterQueue(storage=rig.faulty, name="dead", clock=rig.clock)
    queue = JobQueue("jobs", storage=rig.faulty, dead_letter=dead, clock=rig.clock)
    with recording() as history, TOXICS[toxic](rig.proxy):
        with pytest.raises(StorageUnavailable) as info:
            queue.enqueue({"order": 1}, job_id="order-1")
        assert str(info.value).endswith(
            "): queue.enqueue on 'jobs' may not have been applied. Repeating it is safe (the "
            "job id makes it idempotent) once Redis answers again.")
        with pytest.raises(StorageUnavailable):
            dead.add({"order": 0}, error="e", job_id="order-0")
    check_event(history, "queue.enqueue", "refuse")
    assert queue.enqueue({"order": 1}, job_id="order-1") == "order-1"  # the repeat
    dead.add({"order": 0}, error="e", job_id="order-0")
    shared = JobQueue("jobs", storage=rig.healthy, dead_letter=dead, clock=rig.clock)
    assert len(shared) == 1  # once, however many times it reached Redis
    assert [j.job_id for j in dead.list()] == ["order-0"]
