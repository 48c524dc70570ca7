"""Shared state across real processes: each worker is a separate Python process on the
same real Redis. Buckets, breakers and budgets read the server's clock (``TIME``), as
they would on several hosts; the queue test moves virtual time by hand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_resilience import DeadLetterQueue, JobQueue, RedisStorage, VirtualClock

WORKERS = 4
_TIMEOUT = 120  # seconds any read from a worker may take before the test fails


@pytest.fixture
def url(redis_server: Any) -> str:
    redis_server.flush()
    return str(redis_server.url)


class Worker:
    """A Python process running ``code`` (with ``URL`` and ``INDEX`` defined), talking
    over stdin/stdout lines."""

    def __init__(self, code: str, url: str, index: int) -> None:
        prelude = f"URL = {url!r}\nINDEX = {index}\n"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self) -> int:
        """Wait for the process to end (killing it after the timeout); its exit code."""
        try:
            self.proc.wait(timeout=_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=_TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        return self.proc.returncode


@pytest.fixture
def spawn() -> Iterator[Any]:
    started: list[Worker] = []

    def start(code: str, url: str, count: int = WORKERS) -> list[Worker]:
        workers = [Worker(code, url, i) for i in range(count)]
        started.extend(workers)
        return workers

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.close()


BUCKET_WORKER = """
    from pytest_resilience import RedisStorage, TokenBucket
    storage = RedisStorage(URL)
    bucket = TokenBucket(rate=5.0, capacity=10, name="shared", storage=storage)
    storage.client.ping()  # connected: start-up is over
    print("ready", flush=True)
    input()
    print(sum(bucket.try_acquire() for _ in range(300)), flush=True)
"""


def test_four_processes_never_admit_more_than_capacity_plus_rate_times_t(
    url: str, spawn: Any
) -> None:
    storage = RedisStorage(url)
    workers = spawn(BUCKET_WORKER, url)
    assert [w.line() for w in workers] == ["ready"] * WORKERS
    started = _server_time(storage)
    for worker in workers:
        worker.send("go")
    admitted = [int(w.line()) for w in workers]
    assert [w.close() for w in workers] == [0] * WORKERS
    elapsed = _server_time(storage) - started
    storage.close()
    total = sum(admitted)
    assert total <= 10 + 5.0 * elapsed  # the bound, for the fleet as a whole
    assert total >= 10  # the burst was served
    # Four unshared buckets would have admitted at least 4 bursts.
    assert 10 + 5.0 * elapsed < 4 * 10, f"workers took {elapsed:.1f}s: the test proves little"


def _server_time(storage: RedisStorage) -> float:
    seconds, micros = storage.client.time()
    return float(seconds) + micros / 1e6


BREAKER_WORKER = """
    from pytest_resilience import CircuitBreaker, CircuitOpenError, RedisStorage
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=60.0, name="db",
                             storage=RedisStorage(URL))
    def boom():
        raise ConnectionError("db down")
    if INDEX == 0:
        input()  # wait until the others have called through the closed breaker
        for _ in range(3):
            try:
                breaker.call(boom)
            except ConnectionError:
                pass
        print(breaker.state.value, flush=True)
    else:
        print(breaker.call(lambda: "ok"), flush=True)
        input()  # wait until the first worker has opened the breaker
        try:
            breaker.call(lambda: "ok")
            print("admitted", flush=True)
        except CircuitOpenError as exc:
            print(f"rejected {exc.retry_after > 0}", flush=True)
"""


def test_a_breaker_opened_in_one_process_rejects_in_the_others_on_their_next_call(
    url: str, spawn: Any
) -> None:
    opener, *others = spawn(BREAKER_WORKER, url)
    assert [w.line() for w in others] == ["ok"] * (WORKERS - 1)  # closed for everyone
    opener.send("go")
    assert opener.line() == "open"
    for worker in others:
        worker.send("go")
    assert [w.line() for w in others] == ["rejected True"] * (WORKERS - 1)
    assert [w.close() for w in (opener, *others)] == [0] * WORKERS


BUDGET_WORKER = """
    from pytest_resilience import Backoff, RedisStorage, Retry, RetryBudget, RetryError
    budget = RetryBudget(ratio=0.1, min_retries=3, window=60.0, name="svc",
                         storage=RedisStorage(URL))
    policy = Retry(attempts=4, backoff=Backoff.constant(0), budget=budget)
    attempts = 0
    def flaky():
        global attempts
        attempts += 1
        raise ConnectionError("overloaded")
    for _ in range(20):
        try:
            policy.call(flaky)
        except RetryError:
            pass
    print(attempts - 20, flush=True)
"""


def test_a_shared_retry_budget_caps_the_retries_of_the_fleet(url: str, spawn: Any) -> None:
    workers = spawn(BUDGET_WORKER, url)
    retries = [int(w.line()) for w in workers]
    assert [w.close() for w in workers] == [0] * WORKERS
    calls = 20 * WORKERS
    assert sum(retries) <= 0.1 * calls + 3  # 11 for the fleet
    assert sum(retries) >= 3
    # One budget per process would have allowed 0.1 * 20 + 3 = 5 each, 20 in all.


QUEUE_WORKER = """
    import threading
    from pytest_resilience import DeadLetterQueue, JobQueue, RedisStorage, VirtualClock
    storage = RedisStorage(URL, time="clock")
    clock = VirtualClock()
    queue = JobQueue("work", storage=storage, clock=clock, visibility_timeout=30.0,
                     dead_letter=DeadLetterQueue(storage=storage, name="dead", clock=clock))
    handled = 0
    if INDEX > 0:
        input()  # the others start once the first worker is stuck in its third job
    while (job := queue.dequeue()) is not None:
        if INDEX == 0 and handled == 2:
            print("holding", job.job_id, flush=True)
            threading.Event().wait(120)  # killed here, mid-job
        assert queue.ack(job)
        handled += 1
        print("acked", job.job_id, flush=True)
    print("idle", flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_worker_killed_mid_job_loses_nothing_and_its_job_is_delivered_once_more(
    url: str, spawn: Any
) -> None:
    storage = RedisStorage(url, time="clock")
    clock = VirtualClock()
    dead = DeadLetterQueue(storage=storage, name="dead", clock=clock)
    queue = JobQueue("work", storage=storage, clock=clock, visibility_timeout=30.0,
                     dead_letter=dead)
    jobs = {queue.enqueue({"n": n}, job_id=f"job-{n}") for n in range(40)}
    victim, *survivors = spawn(QUEUE_WORKER, url)
    acked: list[str] = []
    held = None
    while (line := victim.line()) and not line.startswith("holding"):
        acked.append(line.split()[1])
    assert line.startswith("holding")
    held = line.split()[1]
    os.kill(victim.proc.pid, signal.SIGKILL)
    assert victim.close() == -signal.SIGKILL
    assert len(acked) == 2
    for worker in survivors:
        worker.send("go")
    for worker in survivors:
        while (line := worker.line()) != "idle":
            assert line.startswith("acked"), line
            acked.append(line.split()[1])
        assert worker.close() == 0
    assert held not in acked
    assert queue.stats() == {"high": 0, "normal": 0, "low": 0, "leased": 1, "dying": 0}
    clock.advance(30.0)  # the dead worker's lease runs out
    again = queue.dequeue()
    assert again is not None
    assert (again.job_id, again.attempts) == (held, 2)
    assert queue.ack(again)
    acked.append(again.job_id)
    assert queue.dequeue() is None
    assert sorted(acked) == sorted(jobs)  # every job acknowledged exactly once
    assert len(dead) == 0
    storage.close()
