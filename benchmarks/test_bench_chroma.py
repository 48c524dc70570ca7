"""Chroma benchmarks: transaction overhead vs raw writes, rollback vs chromadb's own
delete and re-add of the same records at each store size, and backups vs ``tar``.

Run: ``pytest benchmarks/test_bench_chroma.py --benchmark-only``. Store sizes come from
``RESILIENCE_BENCH_CHROMA_SIZES`` (default ``1000,10000,50000``; the write benchmarks
use the first two); building the 50,000-record store takes about a minute.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("chromadb", reason="Chroma benchmarks need chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")

SIZES = [int(n) for n in os.environ.get("RESILIENCE_BENCH_CHROMA_SIZES",
                                        "1000,10000,50000").split(",")]
DIM = 384
#: Every write crossing chroma's sync_threshold rewrites the whole HNSW index (a cost
#: that grows with the store, for raw writes and transactions alike), so compare medians
#: over enough rounds that those few rounds stay outliers.
ROUNDS = 15
_serial = itertools.count()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], Any]]:
    """Stores of each size, built once for the module on first use."""
    from pytest_resilience.chroma._store import make_store

    made: dict[int, Any] = {}

    def get(records: int) -> Any:
        if records not in made:
            made[records] = make_store(tmp_path_factory.mktemp("bench") / "store",
                                       records=records, dim=DIM, sync_threshold=1000,
                                       seal=False)
        return made[records]

    yield get
    for store in made.values():
        store.close()


@pytest.fixture(params=SIZES[:2], ids=lambda n: f"{n}rec")
def store(request: pytest.FixtureRequest, stores: Callable[[int], Any]) -> Any:
    return stores(request.param)


@pytest.fixture(params=SIZES, ids=lambda n: f"{n}rec")
def sized_store(request: pytest.FixtureRequest, stores: Callable[[int], Any]) -> Any:
    return stores(request.param)


def _batch(n: int = 100) -> tuple[list[str], list[list[float]]]:
    k = next(_serial)
    return [f"b{k}-{i}" for i in range(n)], [[0.5] * DIM] * n


def test_raw_add(benchmark: Any, store: Any) -> None:
    col = store.collection()

    def run() -> None:
        ids, vecs = _batch()
        col.add(ids=ids, embeddings=vecs)

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)


def test_transaction_add(benchmark: Any, store: Any) -> None:
    from pytest_resilience.chroma._transaction import transaction

    col = store.collection()

    def run() -> None:
        ids, vecs = _batch()
        with transaction(col) as tx:
            tx.add(ids, vecs)

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)


def alternate(benchmark: Any, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Each round runs every entry of ``runs`` (each returns the seconds it timed), in an
    order that flips from round to round, so load from other processes hits all alike.
    Returns each entry's median."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs.items())

    def round_() -> None:
        flip = len(next(iter(times.values()))) % 2
        for name, run in order[::-1] if flip else order:
            times[name].append(run())

    benchmark.pedantic(round_, rounds=ROUNDS, warmup_rounds=1)
    return {name: statistics.median(values) for name, values in times.items()}


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def test_transaction_overhead_interleaved(benchmark: Any, store: Any) -> None:
    """Raw add and transactional add of 100 records, alternating within each round;
    ``extra_info["ratio"]`` is tx / raw."""
    from pytest_resilience.chroma._transaction import transaction

    col = store.collection()

    def raw() -> float:
        ids, vecs = _batch()
        return timed(lambda: col.add(ids=ids, embeddings=vecs))

    def in_tx() -> float:
        ids, vecs = _batch()

        def write() -> None:
            with transaction(col) as tx:
                tx.add(ids, vecs)

        return timed(write)

    medians = alternate(benchmark, {"raw": raw, "tx": in_tx})
    benchmark.extra_info.update(raw_median_s=medians["raw"], tx_median_s=medians["tx"],
                                ratio=medians["tx"] / medians["raw"])


def test_rollback_100_updates(benchmark: Any, store: Any) -> None:
    from pytest_resilience.chroma._transaction import ChromaTransaction

    col = store.collection()
    ids = [f"rec-{i:05d}" for i in range(100)]

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        tx = ChromaTransaction(col)
        tx.update(ids, [[0.25] * DIM] * 100)
        return (tx,), {}

    benchmark.pedantic(lambda tx: tx.rollback(), setup=setup, rounds=ROUNDS)


class _Timed:
    """A collection whose ``delete`` and ``add`` add the seconds they take to ``spent``:
    chromadb's own share of a rollback, measured inside that same rollback."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self.spent = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if name not in ("delete", "add"):
            return attr

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - started

        return timed_call


def test_rollback_vs_raw_delete_and_readd(benchmark: Any, sized_store: Any) -> None:
    """Undo an update of 100 records. A rollback deletes them and adds back what it saved,
    so chromadb's own delete and re-add is the floor: ``extra_info["ratio"]`` is rollback /
    the chromadb calls inside that same rollback (median over rounds: each round pays the
    same index syncs in both), at this store size. For reference, each round also times
    the raw delete and re-add on its own (``interleaved_ratio``)."""
    from pytest_resilience.chroma._transaction import ChromaTransaction

    col = sized_store.collection()
    ids = [f"rec-{i:05d}" for i in range(0, 100 * 7, 7)]
    saved = col.get(ids=ids, include=["embeddings", "metadatas", "documents"])
    changed = [[0.25] * DIM] * len(ids)
    own_share: list[float] = []

    def rollback() -> float:
        watched = _Timed(col)
        tx = ChromaTransaction(watched)
        tx.update(ids, changed)
        watched.spent = 0.0
        took = timed(tx.rollback)
        own_share.append(took / watched.spent)
        return took

    def raw() -> float:
        col.update(ids=ids, embeddings=changed)

        def undo() -> None:
            col.delete(ids=saved["ids"])
            col.add(ids=saved["ids"], embeddings=saved["embeddings"],
                    metadatas=saved["metadatas"], documents=saved["documents"])

        return timed(undo)

    medians = alternate(benchmark, {"rollback": rollback, "raw": raw})
    benchmark.extra_info.update(
        records=len(sized_store.records), ratio=statistics.median(own_share),
        raw_median_s=medians["raw"], rollback_median_s=medians["rollback"],
        interleaved_ratio=medians["rollback"] / medians["raw"])

    def by_id(got: Any) -> dict[str, list[float]]:
        return {i: list(v) for i, v in zip(got["ids"], got["embeddings"], strict=True)}

    assert by_id(col.get(ids=ids, include=["embeddings"])) == by_id(saved)


# -- backups -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def backup_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pytest_resilience.chroma._store import make_store

    made = make_store(tmp_path_factory.mktemp("bsrc") / "store", records=2000, dim=DIM,
                      sync_threshold=1000, seal=False)
    path: Path = made.path
    return path


@pytest.mark.parametrize("fmt", ["dir", "tar.gz", "tar.zst"])
def test_backup_manager(benchmark: Any, backup_source: Path, tmp_path: Path, fmt: str) -> None:
    from pytest_resilience.chroma._backup import BackupManager

    benchmark.group = f"chroma-backup-{fmt}"
    manager = BackupManager(backup_source, directory=tmp_path / "b", format=fmt)

    def run() -> None:
        manager.create()

    benchmark.pedantic(run, rounds=3, teardown=lambda: shutil.rmtree(tmp_path / "b"))


def _pipe(first: list[str], second: list[str], out: Path) -> None:
    """``first | second > out``, both checked."""
    with out.open("wb") as sink:
        producer = subprocess.Popen(first, stdout=subprocess.PIPE)
        assert producer.stdout is not None
        consumer = subprocess.run(second, stdin=producer.stdout, stdout=sink, check=True,
                                  timeout=300)
        producer.stdout.close()
        assert producer.wait(300) == 0
        assert consumer.returncode == 0


def _tar(source: Path) -> list[str]:
    return ["tar", "cf", "-", "-C", str(source.parent), source.name]


@pytest.mark.benchmark(group="chroma-backup-tar.gz")
def test_peer_tar_czf(benchmark: Any, backup_source: Path, tmp_path: Path) -> None:
    """``tar czf`` at gzip's default level 6 (ours writes level 3)."""
    if shutil.which("tar") is None:
        pytest.skip("tar is not installed")
    out = tmp_path / "peer.tar.gz"

    def run() -> None:
        subprocess.run(["tar", "czf", str(out), "-C", str(backup_source.parent),
                        backup_source.name], check=True, timeout=300)

    benchmark.pedantic(run, rounds=3)


@pytest.mark.benchmark(group="chroma-backup-tar.gz")
def test_peer_tar_gzip_level_3(benchmark: Any, backup_source: Path, tmp_path: Path) -> None:
    """``tar cf - | gzip -3``: the level ours writes."""
    if shutil.which("tar") is None or shutil.which("gzip") is None:
        pytest.skip("tar or gzip is not installed")
    benchmark.pedantic(_pipe, args=(_tar(backup_source), ["gzip", "-3"],
                                    tmp_path / "peer.tar.gz"), rounds=3)


@pytest.mark.benchmark(group="chroma-backup-tar.zst")
def test_peer_tar_zstd(benchmark: Any, backup_source: Path, tmp_path: Path) -> None:
    """``tar cf - | zstd -3 -T0``: the level and threads ours writes with."""
    if shutil.which("tar") is None or shutil.which("zstd") is None:
        pytest.skip("tar or zstd is not installed")
    benchmark.pedantic(_pipe, args=(_tar(backup_source), ["zstd", "-q", "-3", "-T0"],
                                    tmp_path / "peer.tar.zst"), rounds=3)


@pytest.mark.benchmark(group="chroma-backup-dir")
def test_peer_cp_a(benchmark: Any, backup_source: Path, tmp_path: Path) -> None:
    """``cp -a`` of the store directory."""
    if shutil.which("cp") is None:
        pytest.skip("cp is not installed")
    target = tmp_path / "copy"

    def run() -> None:
        subprocess.run(["cp", "-a", str(backup_source), str(target)], check=True, timeout=300)

    benchmark.pedantic(run, rounds=3, teardown=lambda: shutil.rmtree(target))


@pytest.mark.parametrize("fmt", ["dir", "tar.zst"])
def test_restore(benchmark: Any, backup_source: Path, tmp_path: Path, fmt: str) -> None:
    """Verify (checksums, counts, a child-process probe) and swap in a 2,000-record backup."""
    from pytest_resilience.chroma._backup import BackupManager

    benchmark.group = f"chroma-restore-{fmt}"
    manager = BackupManager(backup_source, directory=tmp_path / "b", format=fmt)
    info = manager.create()
    target = tmp_path / "restored"

    def run() -> None:
        manager.restore(info, target=target)

    benchmark.pedantic(run, rounds=3, teardown=lambda: shutil.rmtree(target))
