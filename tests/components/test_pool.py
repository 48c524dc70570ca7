"""ResourcePool: reuse, health check on checkout, broken resources dropped, bounded size."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._concurrency_pool import ResourcePool
from pytest_resilience._errors import LockTimeout


class Conn:
    ids = itertools.count()

    def __init__(self) -> None:
        self.id = next(Conn.ids)
        self.alive = True
        self.closed = False

    def close(self) -> None:
        self.closed = True


def make_pool(**kwargs: object) -> ResourcePool[Conn]:
    options: dict[str, object] = {
        "size": 2, "check": lambda c: c.alive, "close": Conn.close, "clock": VirtualClock(),
        "timeout": 1.0,
    }
    options.update(kwargs)
    return ResourcePool(Conn, **options)  # type: ignore[arg-type]


def test_reuses_idle_resources() -> None:
    pool = make_pool()
    with pool.resource() as first:
        pass
    with pool.resource() as second:
        assert second is first
    assert pool.created == 1
    assert pool.idle == 1


def test_unhealthy_idle_resource_is_closed_and_replaced() -> None:
    pool = make_pool()
    with pool.resource() as conn:
        pass
    conn.alive = False
    with pool.resource() as fresh:
        assert fresh is not conn
    assert conn.closed
    assert pool.discarded == 1


def test_exception_in_block_discards_the_resource() -> None:
    pool = make_pool()
    with pytest.raises(ConnectionError), pool.resource() as conn:
        raise ConnectionError("reset by peer")
    assert conn.closed
    assert pool.idle == 0
    assert pool.in_use == 0


def test_exhaustion_times_out_on_the_clock() -> None:
    clock = VirtualClock()
    pool = make_pool(clock=clock, name="db", timeout=4.0)
    a, b = pool.acquire(), pool.acquire()
    with pytest.raises(LockTimeout, match=r"db: resource \(0 waiting\) not acquired within 4.0s"):
        pool.acquire()
    assert clock.monotonic() == 4.0
    assert pool.in_use == 2
    pool.release(a)
    assert pool.acquire() is a
    pool.release(a)
    pool.release(b, broken=True)
    assert b.closed


def test_factory_failure_returns_the_slot() -> None:
    def broken_factory() -> Conn:
        raise OSError("cannot connect")

    pool = ResourcePool(broken_factory, size=1, clock=VirtualClock(), timeout=1.0)
    for _ in range(3):
        with pytest.raises(OSError, match="cannot connect"):
            pool.acquire()
    assert pool.in_use == 0


def test_async_pool_with_async_factory_and_check() -> None:
    clock = VirtualClock()
    checks: list[int] = []

    async def factory() -> Conn:
        await clock.asleep(0.1)
        return Conn()

    async def check(conn: Conn) -> bool:
        checks.append(conn.id)
        return conn.alive

    pool: ResourcePool[Conn] = ResourcePool(factory, size=1, check=check, clock=clock,
                                            timeout=5.0)
    order: list[str] = []

    async def user(tag: str) -> None:
        async with pool.aresource() as conn:
            order.append(tag)
            await clock.asleep(1.0)
            assert isinstance(conn, Conn)

    async def main() -> None:
        await asyncio.gather(user("a"), user("b"), user("c"))
        with pytest.raises(LockTimeout):
            async with pool.aresource(), pool.aresource(timeout=0.5):
                pass

    asyncio.run(main())
    assert order == ["a", "b", "c"]
    assert pool.created == 1
    assert len(checks) >= 2


def test_bad_size() -> None:
    with pytest.raises(ValueError, match=r"size=0 is not a valid pool size\. Pass an integer >= 1"):
        ResourcePool(Conn, size=0)
