"""Chroma benchmarks: transaction overhead vs raw writes, rollback vs collection size,
backup speed vs ``tar czf`` of the same directory.

Run: ``pytest benchmarks/test_bench_chroma.py --benchmark-only``. Set
``RESILIENCE_BENCH_BIG=100000`` for the issue's 100k rollback comparison (building that
store takes minutes); the default big size is 10,000.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import time

import pytest

pytest.importorskip("chromadb", reason="Chroma benchmarks need chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")

BIG = int(os.environ.get("RESILIENCE_BENCH_BIG", "10000"))
DIM = 384
#: Every write crossing chroma's sync_threshold rewrites the whole HNSW index (a cost
#: that grows with the store, for raw writes and transactions alike), so compare medians
#: over enough rounds that those few rounds stay outliers.
ROUNDS = 15
_serial = itertools.count()


@pytest.fixture(scope="module", params=[1000, BIG], ids=lambda n: f"{n}rec")
def store(request, tmp_path_factory):
    from pytest_resilience.chroma._store import make_store

    made = make_store(tmp_path_factory.mktemp("bench") / "store", records=request.param,
                      dim=DIM, sync_threshold=1000, seal=False)
    yield made
    made.close()


def _batch(n: int = 100):
    k = next(_serial)
    return [f"b{k}-{i}" for i in range(n)], [[0.5] * DIM] * n


def test_raw_add(benchmark, store) -> None:
    col = store.collection()

    def run() -> None:
        ids, vecs = _batch()
        col.add(ids=ids, embeddings=vecs)

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)


def test_transaction_add(benchmark, store) -> None:
    from pytest_resilience.chroma._transaction import transaction

    col = store.collection()

    def run() -> None:
        ids, vecs = _batch()
        with transaction(col) as tx:
            tx.add(ids, vecs)

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)


def test_transaction_overhead_interleaved(benchmark, store) -> None:
    """Raw add and transactional add of 100 records, alternating within each round, so
    load from other processes hits both alike; ``extra_info["ratio"]`` is tx / raw."""
    from pytest_resilience.chroma._transaction import transaction

    col = store.collection()
    times: dict[str, list[float]] = {"raw": [], "tx": []}

    def raw() -> None:
        ids, vecs = _batch()
        col.add(ids=ids, embeddings=vecs)

    def in_tx() -> None:
        ids, vecs = _batch()
        with transaction(col) as tx:
            tx.add(ids, vecs)

    def pair() -> None:
        order = [("raw", raw), ("tx", in_tx)]
        for name, run in order if len(times["raw"]) % 2 else order[::-1]:
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    benchmark.pedantic(pair, rounds=ROUNDS, warmup_rounds=1)
    raw_median, tx_median = (statistics.median(times[k]) for k in ("raw", "tx"))
    benchmark.extra_info.update(raw_median_s=raw_median, tx_median_s=tx_median,
                                ratio=tx_median / raw_median)


def test_rollback_100_updates(benchmark, store) -> None:
    from pytest_resilience.chroma._transaction import ChromaTransaction

    col = store.collection()
    ids = [f"rec-{i:05d}" for i in range(100)]

    def setup():
        tx = ChromaTransaction(col)
        tx.update(ids, [[0.25] * DIM] * 100)
        return (tx,), {}

    benchmark.pedantic(lambda tx: tx.rollback(), setup=setup, rounds=ROUNDS)


@pytest.fixture(scope="module")
def backup_source(tmp_path_factory):
    from pytest_resilience.chroma._store import make_store

    made = make_store(tmp_path_factory.mktemp("bsrc") / "store", records=2000, dim=DIM,
                      sync_threshold=1000, seal=False)
    return made.path


@pytest.mark.parametrize("fmt", ["dir", "tar.gz", "tar.zst"])
def test_backup_manager(benchmark, backup_source, tmp_path, fmt) -> None:
    from pytest_resilience.chroma._backup import BackupManager

    manager = BackupManager(backup_source, directory=tmp_path / "b", format=fmt)

    def run() -> None:
        manager.create()

    benchmark.pedantic(run, rounds=3, teardown=lambda: shutil.rmtree(tmp_path / "b"))


def test_peer_tar_czf(benchmark, backup_source, tmp_path) -> None:
    if shutil.which("tar") is None:
        pytest.skip("tar is not installed")
    out = tmp_path / "peer.tar.gz"

    def run() -> None:
        subprocess.run(["tar", "czf", str(out), "-C", str(backup_source.parent),
                        backup_source.name], check=True, timeout=300)

    benchmark.pedantic(run, rounds=3)


@pytest.mark.parametrize("fmt", ["dir", "tar.zst"])
def test_restore(benchmark, backup_source, tmp_path, fmt) -> None:
    """Verify (checksums, counts, a child-process probe) and swap in a 2,000-record backup."""
    from pytest_resilience.chroma._backup import BackupManager

    manager = BackupManager(backup_source, directory=tmp_path / "b", format=fmt)
    info = manager.create()
    target = tmp_path / "restored"

    def run() -> None:
        manager.restore(info, target=target)

    benchmark.pedantic(run, rounds=3, teardown=lambda: shutil.rmtree(target))
