"""The store's writer lock: a real child process holding it makes us wait, and the reverse."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import LockTimeout
from pytest_resilience.chroma._backup import BackupManager
from pytest_resilience.chroma._lock import LOCK_NAME, StoreLock
from pytest_resilience.chroma._transaction import transaction

pytest.importorskip("chromadb", reason="Chroma tests need chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")

# Holds the lock until its stdin closes; SIGALRM bounds its life if a test gets stuck.
HOLDER = """
import signal, sys
signal.alarm(120)
from pytest_resilience.chroma._lock import StoreLock
StoreLock(sys.argv[1], timeout=0, purpose="a test writer").acquire()
print("LOCKED", flush=True)
sys.stdin.read()
"""
# Tries the lock once and says whether it got it.
TRY = """
import sys
from pytest_resilience.chroma._lock import StoreLock
from pytest_resilience._errors import LockTimeout
try:
    StoreLock(sys.argv[1], timeout=0).acquire()
except LockTimeout as exc:
    print("BUSY", exc)
else:
    print("GOT")
"""


@contextmanager
def held_by_child(store: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(store)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "LOCKED\n"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _child_try(store: Path) -> str:
    done = subprocess.run([sys.executable, "-c", TRY, str(store)], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_a_child_holding_the_lock_blocks_backup_restore_and_transactions(chroma_store):
    manager = BackupManager(chroma_store.path, format="dir", lock_timeout=2,
                            clock=VirtualClock())
    info = manager.create()
    files = sorted(p.name for p in chroma_store.path.parent.iterdir())
    col = chroma_store.collection()
    with held_by_child(chroma_store.path) as child:
        with pytest.raises(LockTimeout) as busy:
            manager.create()
        assert str(busy.value) == (
            f"Could not take the writer lock of {chroma_store.path} for a backup within 2 s: "
            f"another writer (pid {child.pid} (a test writer)) holds "
            f"{chroma_store.path / LOCK_NAME}. Wait for that transaction, backup or restore "
            "to finish (or stop that writer), or pass a longer lock_timeout=.")
        assert (busy.value.resource, busy.value.timeout) == (
            str(chroma_store.path / LOCK_NAME), 2.0)
        assert [b.name for b in manager.list()] == [info.name]
        with pytest.raises(LockTimeout, match="for a restore within 2 s"):
            manager.restore(info)
        with pytest.raises(LockTimeout, match="for a transaction on 'memories' within 1 s"), \
                transaction(col, lock_timeout=1, clock=VirtualClock()) as tx:
            tx.delete(["rec-00000"])

        async def in_async_with() -> None:
            async with transaction(col, lock_timeout=1, clock=VirtualClock()) as tx:
                await tx.adelete(["rec-00000"])

        with pytest.raises(LockTimeout, match="for a transaction on 'memories' within 1 s"):
            asyncio.run(in_async_with())
        assert col.count() == 300
        assert sorted(p.name for p in chroma_store.path.parent.iterdir()) == files
    with transaction(col) as tx:  # the child is gone: its lock went with it
        tx.delete(["rec-00000"])
    chroma_store.close()
    manager.restore(info)
    assert chroma_store.snapshot() == chroma_store.records
    assert len(manager.list()) == 1
    assert manager.create().counts == {"memories": 300}


def test_an_open_transaction_blocks_a_child_writer(chroma_store) -> None:
    col = chroma_store.collection()
    with transaction(col) as tx:
        tx.delete(["rec-00001"])
        answer = _child_try(chroma_store.path)
        assert answer.startswith("BUSY Could not take the writer lock")
        assert f"(pid {os.getpid()} (a transaction on 'memories'))" in answer
    assert _child_try(chroma_store.path) == "GOT"


def test_restore_keeps_the_lock_file_in_place(chroma_store) -> None:
    manager = BackupManager(chroma_store.path, format="dir")
    info = manager.create()
    inode = (chroma_store.path / LOCK_NAME).stat().st_ino
    manager.restore(info)
    assert (chroma_store.path / LOCK_NAME).stat().st_ino == inode
    assert _child_try(chroma_store.path) == "GOT"


def test_the_same_thread_is_refused_at_once(chroma_store) -> None:
    with transaction(chroma_store.collection()) as tx:
        tx.delete(["rec-00002"])
        with pytest.raises(LockTimeout) as info:
            BackupManager(chroma_store.path).create()
    assert str(info.value) == (
        f"This thread already holds the writer lock of {chroma_store.path} (an open "
        "transaction, backup or restore); a backup would wait for itself. Finish the first "
        "one before starting another.")


@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf"), True])
def test_bad_timeout_is_refused(tmp_path, timeout) -> None:
    with pytest.raises(TypeError if timeout is True else ValueError) as info:
        StoreLock(tmp_path, timeout=timeout)
    assert str(info.value) == (f"timeout={timeout!r} is not a number of seconds. Pass a "
                               "finite number >= 0.")


def test_a_path_with_no_store_says_so(tmp_path) -> None:
    missing = tmp_path / "no-such-store"
    with pytest.raises(LockTimeout) as info:
        StoreLock(missing, timeout=1.0, purpose="a backup", clock=VirtualClock()).acquire()
    assert str(info.value) == (
        f"Could not take the writer lock of {missing} for a backup within 1 s: there is no "
        "directory at that path (nor did a restore swap one in). Pass the directory given "
        "to PersistentClient(path=...).")
    assert not missing.exists()  # nothing was created where the user did not point


@pytest.mark.filterwarnings("ignore:legacy embedding function config:DeprecationWarning")
def test_transactions_on_two_collections_of_one_store_share_the_lock(chroma_store) -> None:
    memories = chroma_store.collection()
    other = chroma_store.client().get_or_create_collection("other", embedding_function=None)
    with transaction(memories) as a:
        with transaction(other) as b:
            b.add(["x"], embeddings=[[0.0] * 8])
        assert b.state == "committed"
        assert not _free_for_another_thread(chroma_store.path)  # the outer one holds it
        a.delete(["rec-00001"])
    assert _free_for_another_thread(chroma_store.path)
    assert other.get(ids=["x"])["ids"] == ["x"]


def _free_for_another_thread(store: Path) -> bool:
    got: list[bool] = []

    def take() -> None:
        try:
            StoreLock(store, timeout=0, clock=VirtualClock()).acquire().release()
            got.append(True)
        except LockTimeout:
            got.append(False)

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(10.0)
    return got == [True]
