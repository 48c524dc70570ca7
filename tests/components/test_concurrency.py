"""TimeoutLock, FairSemaphore, AsyncRWLock: FIFO/priority order, timeouts, no starvation."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pytest_resilience._clock import SystemClock, VirtualClock
from pytest_resilience._concurrency import AsyncRWLock, FairSemaphore, TimeoutLock
from pytest_resilience._errors import LockTimeout
from pytest_resilience._events import recording


def test_lock_timeout_on_the_virtual_clock_names_what_it_waited_for() -> None:
    clock = VirtualClock()
    lock = TimeoutLock(name="index", timeout=2.5, clock=clock)
    lock.acquire()
    assert lock.locked()
    with recording() as history, pytest.raises(LockTimeout) as info:
        lock.acquire()
    assert clock.monotonic() == 2.5
    assert info.value.resource == "index"
    assert info.value.timeout == 2.5
    assert str(info.value) == "index: lock (0 waiting) not acquired within 2.5s"
    assert history.select("lock.timeout")[0].attrs == {"timeout": 2.5, "what": "lock (0 waiting)"}
    lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_threads_get_the_lock_when_released() -> None:
    lock = TimeoutLock(timeout=10.0, clock=SystemClock())
    counter = [0]

    def work() -> None:
        for _ in range(200):
            with lock:
                value = counter[0]
                counter[0] = value + 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert counter[0] == 1600


def test_semaphore_serves_async_waiters_fifo_and_by_priority() -> None:
    clock = VirtualClock()
    sem = FairSemaphore(1, clock=clock, timeout=100.0)
    order: list[str] = []

    async def worker(tag: str, priority: int = 0) -> None:
        async with sem.ahold(priority=priority):
            order.append(tag)
            await clock.asleep(1.0)

    async def main() -> None:
        first = asyncio.ensure_future(worker("first"))
        await asyncio.sleep(0)
        others = [asyncio.ensure_future(worker(t)) for t in "abc"]
        await asyncio.sleep(0)
        urgent = asyncio.ensure_future(worker("urgent", priority=5))
        await asyncio.gather(first, *others, urgent)

    asyncio.run(main())
    assert order == ["first", "urgent", "a", "b", "c"]
    assert clock.monotonic() == 5.0
    assert sem.available == 1


def test_async_semaphore_timeout_and_cancellation_leave_no_waiter() -> None:
    clock = VirtualClock()
    sem = FairSemaphore(1, name="gpu", clock=clock, timeout=3.0)

    async def main() -> None:
        await sem.aacquire()
        with pytest.raises(LockTimeout, match=r"gpu: slot \(0 waiting\) not acquired within 3.0s"):
            await sem.aacquire()
        assert clock.monotonic() == 3.0
        task = asyncio.ensure_future(sem.aacquire(timeout=50))
        await asyncio.sleep(0)
        assert sem.waiting == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sem.waiting == 0
        sem.release()
        assert sem.available == 1

    asyncio.run(main())


def test_sync_semaphore_hands_slots_to_waiting_threads_in_order() -> None:
    sem = FairSemaphore(1, timeout=10.0, clock=SystemClock())
    sem.acquire()
    order: list[int] = []
    started: list[threading.Thread] = []
    for i in range(4):
        t = threading.Thread(target=lambda i=i: (sem.acquire(), order.append(i), sem.release()))
        t.start()
        started.append(t)
        for _ in range(10_000):  # bounded: until this thread is queued
            if sem.waiting == i + 1:
                break
            threading.Event().wait(0.0005)
    sem.release()
    for t in started:
        t.join(10)
    assert order == [0, 1, 2, 3]


def test_release_without_acquire_is_an_error() -> None:
    sem = FairSemaphore(2, clock=VirtualClock())
    with pytest.raises(RuntimeError, match="released more often than acquired"):
        sem.release()


def test_rwlock_readers_share_and_a_waiting_writer_blocks_new_readers() -> None:
    clock = VirtualClock()
    lock = AsyncRWLock(clock=clock, timeout=100.0)
    log: list[str] = []

    async def reader(tag: str, delay: float) -> None:
        await clock.asleep(delay)
        async with lock.read():
            log.append(f"{tag}+")
            await clock.asleep(2.0)
            log.append(f"{tag}-")

    async def writer() -> None:
        await clock.asleep(0.5)
        async with lock.write():
            log.append("W+")
            await clock.asleep(1.0)
            log.append("W-")

    async def main() -> None:
        await asyncio.gather(reader("r1", 0.0), reader("r2", 0.1), writer(), reader("r3", 1.0))

    asyncio.run(main())
    # r3 arrives while the writer waits: it must wait for the writer (no writer starvation)
    assert log == ["r1+", "r2+", "r1-", "r2-", "W+", "W-", "r3+", "r3-"]


def test_rwlock_write_timeout() -> None:
    clock = VirtualClock()
    lock = AsyncRWLock(name="store", clock=clock, timeout=100.0)

    async def main() -> None:
        async with lock.read():
            with pytest.raises(LockTimeout, match=r"store: write lock not acquired within 1\.5s"):
                async with lock.write(timeout=1.5):
                    pass
        async with lock.write():
            assert lock.writing

    asyncio.run(main())
    assert lock.readers == 0
    assert not lock.writing


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FairSemaphore(0), "value=0 is not a valid size. Pass an integer >= 1."),
        (lambda: TimeoutLock(timeout=0), "timeout=0 is not a valid timeout. Pass a finite number"),
        (lambda: AsyncRWLock(timeout=float("inf")), "timeout=inf is not a valid timeout."),
    ],
)
def test_bad_configuration(make: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        make()  # type: ignore[operator]
    assert str(info.value).startswith(message)


def test_timeout_lock_async_path_has_the_same_rules() -> None:
    clock = VirtualClock()
    lock = TimeoutLock(name="model", timeout=1.0, clock=clock)
    order: list[str] = []

    async def holder() -> None:
        async with lock:
            order.append("holder")
            await clock.asleep(0.5)

    async def waiter() -> None:
        await asyncio.sleep(0)
        async with lock.ahold(timeout=2.0):
            order.append("waiter")

    async def main() -> None:
        await asyncio.gather(holder(), waiter())
        await lock.aacquire()
        with pytest.raises(LockTimeout, match=r"model: lock \(0 waiting\) not acquired within"):
            await lock.aacquire()
        lock.release()

    asyncio.run(main())
    assert order == ["holder", "waiter"]
    assert clock.monotonic() == 1.5
    assert not lock.locked()
