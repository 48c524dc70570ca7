"""``recover()`` acts only on the store it is given, only under its lock, only on what the
journal can prove.

Regressions for issue 14: defect 1 (recover read journals before taking the lock and
then rolled back a transaction that had committed meanwhile, run here against a real
second process), defect 2 (recovering a copied store wrote to the original named in the
journal), defect 3 (a torn last journal line made recover restore nothing) and the
recover half of defect 5 (a journal that did not come from this store's own
transactions is never applied).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience import TransactionError, VirtualClock
from pytest_resilience.chroma import ChromaTransaction, close_store, recover

pytest.importorskip("chromadb", reason="Chroma tests need chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")

VEC = [0.5] * 8

_WRITER = textwrap.dedent("""
    import json, os, signal, sys
    import chromadb
    from chromadb.config import Settings
    from pytest_resilience.chroma import ChromaTransaction

    store, name, ops = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    client = chromadb.PersistentClient(path=store, settings=Settings(anonymized_telemetry=False))
    tx = ChromaTransaction(client.get_collection(name, embedding_function=None)).begin()
    for op, ids, kwargs in ops:
        getattr(tx, op)(ids, **kwargs)
    print("ready", tx.journal, flush=True)
    if sys.stdin.readline().strip() == "commit":
        tx.commit()
        print("committed", flush=True)
    else:
        os.kill(os.getpid(), signal.SIGKILL)
""")


class Writer:
    """A second process holding an open transaction on the store, until told to end."""

    def __init__(self, store: Path, name: str, ops: list[Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(store), name, json.dumps(ops)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.proc.kill()
            raise AssertionError(f"writer did not start: {line!r} {self.proc.stderr.read()}")
        self.journal = Path(line.split(" ", 1)[1].strip())

    def finish(self, how: str) -> int:
        """``commit`` or ``kill``; returns the exit code."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(how + "\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=120)
        self.proc.stdin.close()
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


_OPS = [["add", ["committed-1"], {"embeddings": [VEC], "documents": ["new"]}],
        ["update", ["rec-00001"], {"metadatas": [{"n": -5}]}],
        ["delete", ["rec-00002"], {}]]


class _Signalling:
    """A real clock whose sleeps (recover polling the busy lock) are announced, and end
    as soon as the other process is done instead of after a fixed delay."""

    def __init__(self) -> None:
        self.polling = threading.Event()
        self.other_done = threading.Event()

    def monotonic(self) -> float:
        import time

        return time.monotonic()

    def time(self) -> float:
        import time

        return time.time()

    def sleep(self, seconds: float) -> None:
        self.polling.set()
        self.other_done.wait(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def test_recover_during_a_live_transaction_never_rolls_back_its_commit(chroma_store) -> None:
    chroma_store.close()
    writer = Writer(chroma_store.path, chroma_store.name, _OPS)
    clock = _Signalling()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["report"] = recover(chroma_store.path, clock=clock, lock_timeout=120)
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert clock.polling.wait(120), "recover never waited for the writer's lock"
        assert writer.finish("commit") == 0
    finally:
        clock.other_done.set()
        thread.join(120)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"].journals == ()
    close_store(chroma_store.path)
    after = chroma_store.snapshot()
    assert "committed-1" in after
    assert after["rec-00001"][2] == {**chroma_store.records["rec-00001"][2], "n": -5}
    assert "rec-00002" not in after
    assert not writer.journal.exists()


def test_recover_after_the_writer_was_killed_rolls_it_back(chroma_store) -> None:
    before = chroma_store.snapshot()
    chroma_store.close()
    writer = Writer(chroma_store.path, chroma_store.name, _OPS)
    assert writer.finish("kill") == -9
    report = recover(chroma_store.path)
    assert report.journals == (str(writer.journal),)
    assert report.restored == 3
    close_store(chroma_store.path)
    assert chroma_store.snapshot() == before


def _killed_midway(chroma_store) -> tuple[dict[str, Any], Path]:
    before = chroma_store.snapshot()
    chroma_store.close()
    ops = [["delete", [f"rec-{i:05d}"], {}] for i in range(10, 14)]
    writer = Writer(chroma_store.path, chroma_store.name, ops)
    assert writer.finish("kill") == -9
    return before, writer.journal


def test_a_torn_last_line_is_skipped_and_every_complete_line_applied(chroma_store) -> None:
    before, journal = _killed_midway(chroma_store)
    with journal.open("ab") as fh:  # the next entry was being appended when it died
        fh.write(b'212 0badc0de {"saved":{"rec-00014":{"embedding":[0.1,')
    report = recover(chroma_store.path)
    assert report.restored == 4
    assert report.skipped == (f"{journal}: the last 53 bytes have no line end (an "
                              "unfinished write)",)
    close_store(chroma_store.path)
    assert chroma_store.snapshot() == before
    assert not journal.exists()


def test_a_damaged_line_before_good_ones_keeps_the_journal(chroma_store) -> None:
    before, journal = _killed_midway(chroma_store)
    lines = journal.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"rec-00011", b"rec-0001X")  # checksum no longer matches
    journal.write_bytes(b"\n".join(lines))
    with pytest.raises(TransactionError) as info:
        recover(chroma_store.path)
    assert str(info.value) == (
        f"Recovery from {journal} restored 3 ids, but line 3 does not verify, yet line 4 "
        "after it does: the file was damaged, not torn; the ids of the damaged entry may be "
        "left as the transaction wrote them. The journal is kept for inspection.")
    assert journal.exists()
    close_store(chroma_store.path)
    after = chroma_store.snapshot()
    assert set(before) - set(after) == {"rec-00011"}


def test_a_copied_store_is_recovered_only_where_asked(chroma_store, tmp_path: Path) -> None:
    col = chroma_store.collection()
    tx = ChromaTransaction(col).begin()
    tx.delete(["rec-00005"])
    tx.add(["mid-tx"], [VEC])
    copy = tmp_path / "copy"
    shutil.copytree(chroma_store.path, copy)  # taken mid-transaction: journal included
    tx.rollback()
    col.update(ids=["rec-00005"], metadatas=[{"n": 999}])  # the original moves on
    original = chroma_store.snapshot()
    chroma_store.close()
    with pytest.raises(TransactionError) as info:
        recover(copy)
    journal = next((copy / ".resilience" / "journal").glob("*.jsonl"))
    assert str(info.value) == (
        f"The journal {journal} was written by a transaction on "
        f"{chroma_store.path.resolve()}, but recover was given {copy} (a copy or a move of "
        f"it). It was not applied. Pass adopt=True to roll back {copy}'s copy of that "
        f"transaction, or run recover({chroma_store.path.resolve()}) for the original.")
    report = recover(copy, adopt=True)
    assert report.restored == 2
    assert chroma_store.snapshot() == original  # the original was never written
    copied = _snapshot(copy, chroma_store.name)
    assert "mid-tx" not in copied
    assert copied["rec-00005"][2] == chroma_store.records["rec-00005"][2]


def _snapshot(path: Path, name: str) -> dict[str, Any]:
    import chromadb
    from chromadb.config import Settings

    close_store(path)
    col = chromadb.PersistentClient(path=str(path), settings=Settings(
        anonymized_telemetry=False)).get_collection(name, embedding_function=None)
    got = col.get(include=["embeddings", "documents", "metadatas"])
    return {rid: (tuple(float(x) for x in got["embeddings"][i]), got["documents"][i],
                  got["metadatas"][i]) for i, rid in enumerate(got["ids"])}


def test_a_journal_of_another_store_is_refused(chroma_store, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(chroma_store.path, other)
    col = chroma_store.collection()
    with ChromaTransaction(col) as tx:  # gives the store its identity
        tx.delete(["rec-00007"])
    before = chroma_store.snapshot()
    chroma_store.close()
    planted = chroma_store.path / ".resilience" / "journal" / "tx-planted.jsonl"
    header = {"journal": 2, "collection": chroma_store.name, "collection_id": None,
              "store": str(other), "store_id": "not-this-store", "pid": 1}
    from pytest_resilience.chroma._journal import frame

    planted.write_bytes(frame(header) + frame({"saved": dict.fromkeys(before)}))
    with pytest.raises(TransactionError) as info:
        recover(chroma_store.path)
    assert str(info.value).startswith(
        f"The journal {planted} names the store {other}, not {chroma_store.path} (whose "
        "identity it does not carry: another store's journal, or one from before a "
        "restore). It was not applied")
    assert chroma_store.snapshot() == before  # not one record deleted


def test_a_journal_file_outside_a_store_needs_its_store(tmp_path: Path) -> None:
    loose = tmp_path / "tx.jsonl"
    loose.write_text("")
    with pytest.raises(TransactionError, match="Pass store=<the store directory> as well"):
        recover(loose)


def test_a_client_on_another_store_is_refused(chroma_store, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    shutil.copytree(chroma_store.path, other)
    with pytest.raises(TransactionError, match=r"^client= is a chromadb client on "):
        recover(other, client=chroma_store.client(), clock=VirtualClock())
