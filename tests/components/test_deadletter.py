"""DeadLetterQueue: persistence (also across SIGKILL), replay, purge, events.

Each test that takes ``storage`` runs on both backends (tests/components/conftest.py):
a SQLite file, or a real Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience import MemoryStorage, Storage
from pytest_resilience._clock import VirtualClock
from pytest_resilience._deadletter import DeadLetterQueue
from pytest_resilience._events import recording


def dead_letters(storage: Storage, path: Path, **kwargs: Any) -> DeadLetterQueue:
    """A queue in the SQLite file ``path`` (memory backend) or in Redis."""
    return DeadLetterQueue(path if isinstance(storage, MemoryStorage) else None,
                           storage=storage, **kwargs)


def test_add_list_get_and_reopen(tmp_path: Path, storage: Storage) -> None:
    clock = VirtualClock()
    db = tmp_path / "dlq.sqlite"
    with dead_letters(storage, db, clock=clock) as queue:
        first = queue.add({"order": 1}, error=ValueError("bad"), attempts=3)
        clock.advance(1)
        queue.add([1, 2], error="timeout", job_id="fixed")
    with dead_letters(storage, db, clock=clock) as again:
        jobs = again.list()
        assert [j.job_id for j in jobs] == [first, "fixed"]
        assert jobs[0].payload == {"order": 1}
        assert jobs[0].error == "ValueError('bad')"
        assert jobs[0].attempts == 3
        assert again.get("fixed") is not None
        assert again.get("missing") is None
        assert len(again) == 2
        assert jobs[0].added_at == again.clock.time() - 1
        assert again.list(limit=1) == jobs[:1]
        assert again.list(limit=0) == []


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_replay_removes_delivered_and_keeps_failing_jobs(
    tmp_path: Path, mode: str, storage: Storage
) -> None:
    queue = dead_letters(storage, tmp_path / "q.db", clock=VirtualClock(), name="jobs")
    ok_id = queue.add({"n": 1}, error="e", attempts=2)
    bad_id = queue.add({"n": 2}, error="e", attempts=2)

    def handler(payload: dict[str, int]) -> None:
        if payload["n"] == 2:
            raise RuntimeError("still broken")

    async def ahandler(payload: dict[str, int]) -> None:
        handler(payload)

    with recording() as history:
        result = queue.replay(handler) if mode == "sync" else asyncio.run(queue.areplay(ahandler))
    assert result.replayed == (ok_id,)
    assert result.failed == (bad_id,)
    kept = queue.get(bad_id)
    assert kept is not None
    assert kept.attempts == 3
    assert kept.error == "RuntimeError('still broken')"
    assert len(queue) == 1
    assert history.select("deadletter.replayed")[0].attrs == {
        "job_id": ok_id, "attempts": 3, "error": None}
    queue.close()


def test_purge_by_age_and_id(tmp_path: Path, storage: Storage) -> None:
    clock = VirtualClock()
    queue = dead_letters(storage, tmp_path / "q.db", clock=clock)
    old = queue.add(1, error="e")
    clock.advance(100)
    mid = queue.add(2, error="e")
    clock.advance(10)
    queue.add(3, error="e")
    with recording() as history:
        assert queue.purge(older_than=50) == 1
        assert queue.purge(job_ids=[mid, "nope"]) == 1
    assert [e.attrs["job_id"] for e in history.select("deadletter.purged")] == [old, mid]
    assert queue.purge() == 1
    assert len(queue) == 0
    queue.close()


def test_add_emits_event_and_refuses_non_json(tmp_path: Path, storage: Storage) -> None:
    queue = dead_letters(storage, tmp_path / "q.db", clock=VirtualClock(), name="q")
    with recording() as history:
        job = queue.add({"a": 1}, error=KeyError("k"), attempts=4)
    assert history[0].kind == "deadletter.added"
    assert history[0].attrs == {"job_id": job, "attempts": 4, "error": "KeyError('k')"}
    with pytest.raises(TypeError, match=r"payload=\{1, 2\} is not JSON-serialisable"):
        queue.add({1, 2}, error="e")
    with pytest.raises(ValueError, match="attempts=-1 is not a valid count"):
        queue.add(1, error="e", attempts=-1)
    queue.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_jobs_survive_sigkill_of_the_writing_process(tmp_path: Path) -> None:
    db = tmp_path / "dlq.sqlite"
    child = textwrap.dedent(f"""
        import sys, threading
        from pytest_resilience._deadletter import DeadLetterQueue
        queue = DeadLetterQueue({str(db)!r})
        for i in range(25):
            queue.add({{"job": i}}, error="boom", attempts=i)
        print("added", flush=True)
        threading.Event().wait(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "added"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    with DeadLetterQueue(db) as queue:
        jobs = queue.list()
    assert [j.payload["job"] for j in jobs] == list(range(25))
    assert [j.attempts for j in jobs] == list(range(25))


def test_path_or_storage_but_not_both_nor_neither(tmp_path: Path, storage: Storage) -> None:
    shared = not isinstance(storage, MemoryStorage)
    with pytest.raises(ValueError) as info:
        DeadLetterQueue(tmp_path / "q.db" if shared else None, storage=storage)
    assert str(info.value).endswith(
        "pass a SQLite file path, or a shared storage such as RedisStorage, not both and "
        "not neither.")
