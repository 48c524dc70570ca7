"""Transactions: all-or-nothing writes, rollback to the exact prior state, recovery."""

from __future__ import annotations

import asyncio

import pytest

from faults.chroma import fail_during
from pytest_resilience._errors import FaultInjected, TransactionError
from pytest_resilience._events import History, recording
from pytest_resilience.chroma._transaction import ChromaTransaction, recover, transaction

pytest.importorskip("chromadb", reason="Chroma tests need chromadb")
# chromadb 1.5.9 warns about its own stored config when a collection has no embedding fn.
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")

VEC = [0.5] * 8


def _writes(tx: ChromaTransaction) -> None:
    tx.add(["new-1", "rec-00001"], [VEC, VEC], documents=["new", "shadow"])
    tx.update(["rec-00002"], [[0.125] * 8], metadatas=[{"n": -1}], documents=["changed"])
    tx.upsert(["rec-00003", "new-2"], [[0.25] * 8, [0.75] * 8])
    tx.delete(["rec-00004"])


def test_exception_rolls_back_every_kind_of_write(chroma_store) -> None:
    col = chroma_store.collection()
    before = chroma_store.snapshot()
    counts = []

    def body() -> None:
        with transaction(col) as tx:
            _writes(tx)
            counts.append(col.count())  # the writes are applied inside the block
            raise KeyError("boom")

    with pytest.raises(KeyError):
        body()
    assert counts == [301]
    assert chroma_store.snapshot() == before


def test_clean_exit_commits(chroma_store) -> None:
    col = chroma_store.collection()
    with transaction(col) as tx:
        _writes(tx)
    after = chroma_store.snapshot()
    assert tx.state == "committed"
    assert {"new-1", "new-2"} <= set(after)
    assert "rec-00004" not in after
    assert after["rec-00002"][1] == "changed"
    # add of an existing id is a no-op in chroma, and is kept as such
    assert after["rec-00001"] == chroma_store.records["rec-00001"]


def test_async_with_rolls_back(chroma_store) -> None:
    col = chroma_store.collection()
    before = chroma_store.snapshot()

    async def main() -> None:
        async with transaction(col) as tx:
            await tx.aadd(["a-1"], [VEC])
            await tx.adelete(["rec-00010"])
            raise RuntimeError("async boom")

    with pytest.raises(RuntimeError):
        asyncio.run(main())
    assert chroma_store.snapshot() == before


def test_explicit_commit_and_rollback(chroma_store) -> None:
    col = chroma_store.collection()
    tx = ChromaTransaction(col).begin()
    tx.delete(["rec-00000"])
    tx.rollback()
    assert "rec-00000" in chroma_store.snapshot()
    with pytest.raises(TransactionError, match="Cannot commit: this transaction is rolled back"):
        tx.commit()
    tx2 = ChromaTransaction(col)
    tx2.delete(["rec-00000"])
    tx2.commit()
    assert "rec-00000" not in chroma_store.snapshot()


def test_nesting_is_refused(chroma_store) -> None:
    col = chroma_store.collection()
    with transaction(col), pytest.raises(TransactionError) as info, transaction(col):
        pass
    assert str(info.value) == (
        "A transaction is already open on collection 'memories'. Nested transactions are not "
        "supported: commit or roll back the outer one first.")
    with transaction(col) as tx:  # the outer one closed, so a new one opens
        tx.delete(["rec-00005"])


def test_checkpoint_reads_only_touched_ids(chroma_store) -> None:
    col = chroma_store.collection()
    asked: list[list[str]] = []
    real_get = col.get

    def spy(*args, **kwargs):
        asked.append(list(kwargs.get("ids") or []))
        return real_get(*args, **kwargs)

    object.__setattr__(col, "get", spy)
    try:
        with transaction(col) as tx:
            tx.update(["rec-00007", "rec-00008"], metadatas=[{"n": 1}, {"n": 2}])
            tx.delete(["rec-00008", "rec-00009"])
    finally:
        object.__delattr__(col, "get")
    assert asked == [["rec-00007", "rec-00008"], ["rec-00009"]]


def test_failed_write_part_way_is_rolled_back(chroma_store) -> None:
    col = chroma_store.collection()
    before = chroma_store.snapshot()
    ids = [f"batch-{i}" for i in range(20)]
    with fail_during(col, "add", after=7) as stats, pytest.raises(FaultInjected), \
            transaction(col) as tx:
        tx.add(ids, [VEC] * 20)
    assert stats == {"written": 7, "failed": 1}
    assert chroma_store.snapshot() == before


def test_failed_rollback_raises_and_recover_finishes_it(chroma_store) -> None:
    col = chroma_store.collection()
    before = chroma_store.snapshot()
    tx = ChromaTransaction(col).begin()
    tx.delete(["rec-00011", "rec-00012"])
    tx.add(["fresh"], [VEC])
    with fail_during(col, "add", after=0), pytest.raises(TransactionError) as info:
        tx.rollback()
    err = info.value
    assert set(err.unrestored) == {"fresh", "rec-00011", "rec-00012"}
    assert err.journal is not None
    assert "run recover()" in str(err)
    assert tx.journal is not None
    assert tx.journal.exists()
    assert chroma_store.snapshot() != before
    report = recover(chroma_store.path, client=chroma_store.client())
    assert report.restored == 3
    assert report.journals == (err.journal,)
    assert chroma_store.snapshot() == before
    assert not tx.journal.exists()


def test_events_name_the_collection(chroma_store) -> None:
    col = chroma_store.collection()
    history = History()
    with recording(history), transaction(col) as tx:
        tx.delete(["rec-00021"])

    def failing() -> None:
        with transaction(col) as tx:
            tx.add(["x-1", "x-2"], [VEC, VEC])
            raise ValueError

    with recording(history), pytest.raises(ValueError):
        failing()
    commit, rollback = history.select("chroma.")
    assert (commit.kind, commit.source, commit.attrs["ops"], commit.attrs["ids"]) == \
        ("chroma.commit", "memories", 1, 1)
    assert (rollback.kind, rollback.attrs["ids"], rollback.attrs["outcome"]) == \
        ("chroma.rollback", 2, "ok")


def test_bad_chunk_size_is_refused(chroma_store) -> None:
    with pytest.raises(ValueError) as info:
        ChromaTransaction(chroma_store.collection(), chunk_size=0)
    assert str(info.value) == ("chunk_size=0 is not a positive integer. Pass at most 5000 "
                               "(chroma's batch limit is 5461).")
