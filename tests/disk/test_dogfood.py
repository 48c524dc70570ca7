"""The crash-point explorer run over this project's own journals: the dead-letter queue
(SQLite, explored in a child process), the Chroma transaction journal and the backup
writer (explored in the Python I/O layer). Results are in docs/process-and-disk.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faults import disk
from pytest_resilience import DeadLetterQueue

# -- the dead-letter queue: SQLite, so a real child process and copies per statement ------

DLQ_WORKLOAD = """
import sys
from pathlib import Path
from faults import disk
from pytest_resilience import DeadLetterQueue

queue = DeadLetterQueue(Path(sys.argv[1]) / "dead.db", name="jobs")
for n in range(3):
    queue.add({"model": "sentiment", "n": n}, error="load failed", attempts=3,
              job_id=f"job-{n}")
    disk.ack(["added", f"job-{n}"])

def deliver(payload):
    if payload["n"] != 1:
        raise ConnectionError("model store still down")
    disk.ack(["delivered", f"job-{payload['n']}"])   # handled: it may now leave the queue

result = queue.replay(deliver)
for job in result.failed:
    disk.ack(["retried", job])
disk.ack(["purging", "job-2"])
queue.purge(job_ids=["job-2"])
disk.ack(["purged", "job-2"])
queue.close()
"""


def dlq_invariants(state: disk.CrashState) -> None:
    """Every acknowledged job is kept whole until it was delivered or purged (a delivered
    job may come back once: at-least-once); a purged job stays gone; a failed replay's
    attempt is counted once it was reported; the database is sound."""
    acked = [tuple(a) for a in state.acked]
    added = [job for kind, job in acked if kind == "added"]
    may_leave = {job for kind, job in acked if kind in ("delivered", "purging")}
    gone = {job for kind, job in acked if kind == "purged"}
    retried = {job for kind, job in acked if kind == "retried"}
    if not (state.root / "dead.db").exists():
        assert not added, f"jobs {added} were acknowledged but the queue file is gone"
        return
    with DeadLetterQueue(state.root / "dead.db", name="jobs") as queue:
        jobs = {job.job_id: job for job in queue.list()}
        check = queue._db.execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok"
    assert set(jobs) <= {f"job-{n}" for n in range(3)}
    for job in added:
        if job in gone:
            assert job not in jobs, f"{job} was purged, yet it is back"
        elif job not in may_leave:
            assert job in jobs, f"{job} was acknowledged, then lost"
        if job in jobs:
            assert jobs[job].payload == {"model": "sentiment", "n": int(job[-1])}
            assert jobs[job].attempts in ((4,) if job in retried else (3, 4))


def test_dead_letter_queue_keeps_every_acknowledged_job_across_crashes(tmp_path: Path) -> None:
    script = tmp_path / "dlq_workload.py"
    script.write_text(DLQ_WORKLOAD)
    root = tmp_path / "queue"
    root.mkdir()
    report = disk.explore_process(script, root, args=[str(root)], check=dlq_invariants,
                                  timeout=60)
    report.assert_ok()
    assert report.points >= 12                   # one before each SQLite statement, and the end
    assert report.states >= 8


def test_dead_letter_queue_asks_sqlite_for_durable_commits(tmp_path: Path) -> None:
    """SQLite's own options are what make a committed job durable: WAL with
    ``synchronous=FULL`` fsyncs the log at every commit."""
    with DeadLetterQueue(tmp_path / "dead.db") as queue:
        mode = queue._db.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = queue._db.execute("PRAGMA synchronous").fetchone()[0]
    assert (mode, synchronous) == ("wal", 2)     # 2 = FULL


# -- the Chroma transaction journal ---------------------------------------------------------

chroma = pytest.importorskip("chromadb", reason="the journal and backups need chromadb")
chroma_warnings = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")

TOUCHED = ["rec-00001", "new-1", "rec-00004"]
Rows = dict[str, tuple[tuple[float, ...], Any, Any]]


def rows(collection: Any) -> Rows:
    got = collection.get(ids=TOUCHED, include=["embeddings", "documents", "metadatas"])
    return {rid: (tuple(float(x) for x in got["embeddings"][i]), got["documents"][i],
                  got["metadatas"][i]) for i, rid in enumerate(got["ids"])}


def put_back(collection: Any, saved: Rows) -> None:
    """Make the touched ids hold ``saved``: the collection as a crash left it."""
    collection.delete(ids=TOUCHED)
    if saved:
        ids = sorted(saved)
        collection.add(ids=ids, embeddings=[list(saved[i][0]) for i in ids],
                       documents=[saved[i][1] for i in ids],
                       metadatas=[saved[i][2] for i in ids])


def explore_transaction(chroma_store: Any, *, torn: bool) -> disk.CrashReport:
    from pytest_resilience.chroma import recover, transaction

    collection = chroma_store.collection()
    journal = chroma_store.path / ".resilience" / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    before = rows(collection)
    after: Rows = {}

    def workload() -> None:
        with transaction(collection) as tx:
            tx.upsert(["rec-00001"], [[0.25] * 8], documents=["changed"])
            disk.ack("upserted")
            tx.add(["new-1"], [[0.75] * 8], documents=["new"])
            disk.ack("added")
            tx.delete(["rec-00004"])
            disk.ack("deleted")
        after.update(rows(collection))
        disk.ack("committed")

    def all_or_nothing(state: disk.CrashState) -> None:
        put_back(collection, state.observed)      # chroma as it was at the crash
        recover(chroma_store.path, client=chroma_store.client())
        now = rows(collection)
        if "committed" in state.acked:
            assert now == after, "a committed transaction was undone by recovery"
        else:
            assert now in (before, after), "recovery left a half-applied transaction"

    return disk.explore(journal, workload, check=all_or_nothing, torn=torn,
                        observe=lambda: rows(collection))


@chroma_warnings
def test_transaction_journal_recovers_all_or_nothing_after_any_crash(chroma_store: Any) -> None:
    report = explore_transaction(chroma_store, torn=False)
    report.assert_ok()
    assert report.points >= 5                      # an fsync per journal entry, the directory's


@chroma_warnings
def test_transaction_journal_survives_a_torn_last_entry(chroma_store: Any) -> None:
    explore_transaction(chroma_store, torn=True).assert_ok()


# -- the backup writer ----------------------------------------------------------------------

@chroma_warnings
@pytest.mark.parametrize("fmt", ["tar.gz", "dir"])
def test_backup_writer_keeps_every_acknowledged_backup_whole(chroma_store: Any, tmp_path: Path,
                                                            fmt: str) -> None:
    from pytest_resilience.chroma import BackupManager

    backups = tmp_path / "backups"
    backups.mkdir()
    manager = BackupManager(chroma_store.path, directory=backups, format=fmt)

    def workload() -> None:
        disk.ack(manager.create().name)

    def durable_and_whole(state: disk.CrashState) -> None:
        listed = manager.list()
        assert set(state.acked) <= {b.name for b in listed}, "a created backup was lost"
        for info in listed:
            findings = manager.verify(info, probe=False).findings
            assert not findings, f"{info.name} is listed but broken: {findings[:2]}"

    # SQLite's backup API writes the staging copy of chroma.sqlite3 (and commits it with
    # its own fsync): taken as durable; every other file is written by Python.
    report = disk.explore(backups, workload, check=durable_and_whole, opaque="durable")
    report.assert_ok()
    assert report.trusted == () or all(".staging-" in p for p in report.trusted)

