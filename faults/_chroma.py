"""Chroma faults: corrupt a store's files, fail a write part-way, SIGKILL a writer.

``corrupt(store, mode, seed)`` damages one file kind of a *closed* store (and only files
under the path handed over); it is a context manager that puts every byte back on
exit. ``Corruption.outcome()`` opens the damaged store in a child process and says what
chromadb does with it on its own: ``ok``, ``clean_error``, ``panic`` (a
``PanicException``, which escapes ``except Exception``), ``crash`` (a signal such as
SIGSEGV), ``silent_divergence`` (answers differ from those sealed before the damage) or
``hang`` (bounded by ``timeout``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_resilience import Clock, FaultInjected, History, emit, validate
from pytest_resilience.chroma import (
    SQLITE_NAME,
    ProbeResult,
    latest_seal,
    probe_store,
    vector_segments,
)
from pytest_resilience.kinds import CHROMA_CORRUPT, FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED
from pytest_resilience.patching import patched

__all__ = [
    "CRASH_PRONE",
    "MODES",
    "OUTCOMES",
    "Corruption",
    "KillReport",
    "Outcome",
    "classify",
    "corrupt",
    "fail_during",
    "judge",
    "kill_during",
    "probe",
]

_HNSW = {"header": "header.bin", "data_level0": "data_level0.bin", "length": "length.bin",
         "link_lists": "link_lists.bin", "index_metadata": "index_metadata.pickle"}
_SQLITE_MODES = {
    "sqlite-truncate": "truncate chroma.sqlite3 to its first page",
    "sqlite-reset": "truncate chroma.sqlite3 to 0 bytes",
    "sqlite-zero-page": "zero one b-tree page of a chroma table (table= picks it)",
    "sqlite-bitflip": "flip 16 bits inside the b-tree pages of the embeddings table",
}
#: Every corruption mode and what it does.
MODES: dict[str, str] = {
    **_SQLITE_MODES,
    **{f"{stem}-{how}": f"{verb} {name} of the vector segment"
       for stem, name in _HNSW.items()
       for how, verb in (("truncate", "truncate to half"), ("bitflip", "flip 16 bits of"),
                         ("delete", "delete"))},
    "data_level0-graph": "flip a high bit of one neighbour id in 16 elements of "
                         "data_level0.bin's level-0 graph (ids out of range)",
    "segment-delete": "delete the whole vector segment directory",
    "metadata-garbage": "overwrite index_metadata.pickle with random bytes of equal size",
}
#: Modes seen to kill a process that opens the damaged store (SIGSEGV, SIGABRT): open
#: such a store only in a child (``classify``, ``verify_store``).
CRASH_PRONE = frozenset({"data_level0-graph", "data_level0-bitflip", "sqlite-bitflip"})
OUTCOMES = ("ok", "clean_error", "panic", "crash", "silent_divergence", "hang")
_PAGE_TABLES = ("segments", "collections", "max_seq_id", "migrations", "embeddings",
                "embedding_metadata", "embeddings_queue")


@dataclass(frozen=True)
class Outcome:
    """What chromadb did with a store: ``kind`` is one of ``OUTCOMES``."""

    kind: str
    detail: str = ""
    signal: str | None = None

    def __str__(self) -> str:
        return f"crash({self.signal})" if self.kind == "crash" else self.kind


def probe(store: Path | str, *, timeout: float = 60.0) -> ProbeResult:
    """Describe a store from a child process (counts, record digests, query answers)."""
    return probe_store(store, timeout=timeout)


def classify(store: Path | str, *, baseline: ProbeResult | dict[str, Any] | None = None,
             timeout: float = 30.0) -> Outcome:
    """Open the store in a child process and compare with ``baseline``.

    ``baseline`` is a ``probe()`` taken before the damage, or by default the answers in
    the store's newest seal (``seal_store``).
    """
    before = _baseline(Path(store), baseline)
    queries = {name: c["queries"] for name, c in before.items()}
    return judge(probe_store(store, queries=queries, timeout=timeout), before)


def judge(result: ProbeResult, baseline: dict[str, Any]) -> Outcome:
    """Classify a probe of a damaged store against the healthy ``baseline`` collections.

    ``verify_store``'s report carries such a probe (``report.probe``), so one child
    process can serve both.
    """
    before = baseline
    if result.status == "crash":
        return Outcome("crash", result.error or "", result.signal)
    if result.status != "ok":
        return Outcome(result.status, result.error or "")
    for name, then in before.items():
        now = result.collections.get(name)
        if now is None:
            return Outcome("silent_divergence", f"collection {name!r} is gone")
        for key, what in (("rows", "record count"), ("digest", "records"),
                          ("answers", "query answers")):
            if now[key] != then[key]:
                return Outcome("silent_divergence", f"{name}: {what} differ from the baseline")
    return Outcome("ok")


def _baseline(store: Path, baseline: ProbeResult | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(baseline, ProbeResult):
        if baseline.status != "ok":
            raise ValueError(f"baseline={baseline.status!r} is not a healthy probe. Probe the "
                             "store before damaging it.")
        return baseline.collections
    if baseline is not None:
        return baseline
    sealed = latest_seal(store)
    if sealed is None or "probe" not in sealed[1]:
        raise ValueError(f"baseline=None and {store} has no sealed answers. Call "
                         "seal_store(store) before corrupting it, or pass baseline=probe(store).")
    return dict(sealed[1]["probe"])


@dataclass
class Corruption:
    """One applied corruption; a context manager that restores the files on exit."""

    store: Path
    mode: str
    seed: int
    files: tuple[str, ...]
    detail: str
    _saved: dict[str, bytes | None] = field(default_factory=dict, repr=False)
    undone: bool = False
    clock: Clock | None = field(default=None, repr=False)
    history: History | None = field(default=None, repr=False)

    def outcome(self, *, baseline: ProbeResult | dict[str, Any] | None = None,
                timeout: float = 30.0) -> Outcome:
        """What chromadb does with the damaged store (see ``classify``)."""
        return classify(self.store, baseline=baseline, timeout=timeout)

    def undo(self) -> None:
        """Put back every byte this corruption changed (idempotent)."""
        if self.undone:
            return
        for rel, data in self._saved.items():
            path = self.store / rel
            if data is None:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        self.undone = True
        source = store_label(self.store)
        emit(CHROMA_CORRUPT, source, self.clock, history=self.history,
             path=list(self.files), mode=self.mode, outcome="undone")
        emit(FAULT_DISARMED, source, self.clock, history=self.history, family="chroma",
             fault=self.mode)

    def __enter__(self) -> Corruption:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.undo()


def corrupt(store: Path | str, mode: str, seed: int = 0, *, table: str | None = None,
            clock: Clock | None = None, history: History | None = None) -> Corruption:
    """Damage the closed store at ``store`` as ``mode`` says (see ``MODES``), seeded.

    Only files under ``store`` are touched. Use as ``with corrupt(...) as c:`` to have
    them restored on exit, or call ``c.undo()``. The ``chroma.corrupt`` events carry
    ``clock``'s time and go to ``history`` (or the active one).
    """
    root = Path(store)
    history = validate.history(history)
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a corruption mode. Pass one of: "
                         + ", ".join(MODES) + ".")
    if table is not None and (mode != "sqlite-zero-page" or table not in _PAGE_TABLES):
        raise ValueError(f"table={table!r} is not accepted here. Pass it only with "
                         f"mode='sqlite-zero-page', one of {', '.join(_PAGE_TABLES)}.")
    if not (root / SQLITE_NAME).is_file():
        raise ValueError(f"store={str(root)!r} is not a Chroma store (no {SQLITE_NAME}). "
                         "Pass the directory given to PersistentClient(path=...).")
    rng = random.Random(seed)
    saved: dict[str, bytes | None] = {}
    if mode.startswith("sqlite-"):
        rel, detail = _corrupt_sqlite(root, mode, rng, table, saved)
        files: tuple[str, ...] = (rel,)
    else:
        segment = _segment_dir(root)
        files, detail = _corrupt_segment(root, segment, mode, rng, saved)
    corruption = Corruption(root, mode, seed, files, detail, saved, clock=clock,
                            history=history)
    source = store_label(root)
    emit(FAULT_ARMED, source, clock, history=history, family="chroma", fault=mode)
    emit(CHROMA_CORRUPT, source, clock, history=history, path=list(files), mode=mode,
         outcome="injected")
    emit(FAULT_FIRED, source, clock, history=history, family="chroma", action=mode,
         trigger="always", call=1, seed=seed, detail=detail)
    return corruption


def store_label(store: Path | str) -> str:
    """The event source naming a store: ``chroma:<directory name>``, never a temp path."""
    return f"chroma:{Path(store).name}"


def _segment_dir(root: Path) -> str:
    segments = sorted(s for s in vector_segments(root / SQLITE_NAME) if (root / s).is_dir())
    if not segments:
        raise ValueError(f"store={str(root)!r} has no vector segment directory yet. Add "
                         "records past the collection's sync_threshold first.")
    return segments[0]


def _save(root: Path, rel: str, saved: dict[str, bytes | None]) -> Path:
    path = root / rel
    saved.setdefault(rel, path.read_bytes() if path.is_file() else None)
    return path


def _flip(data: bytearray, positions: Sequence[int], rng: random.Random) -> None:
    for pos in positions:
        data[pos] ^= 1 << rng.randrange(8)


def _corrupt_sqlite(root: Path, mode: str, rng: random.Random, table: str | None,
                    saved: dict[str, bytes | None]) -> tuple[str, str]:
    path = _save(root, SQLITE_NAME, saved)
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536 if len(data) >= 100 else 4096
    if mode == "sqlite-truncate":
        path.write_bytes(bytes(data[:page]))
        return SQLITE_NAME, f"truncated from {len(data)} to {page} bytes"
    if mode == "sqlite-reset":
        path.write_bytes(b"")
        return SQLITE_NAME, f"truncated from {len(data)} to 0 bytes"
    name = table or (rng.choice(_PAGE_TABLES) if mode == "sqlite-zero-page" else "embeddings")
    pages = _pages_of(path, name)
    if not pages:
        raise ValueError(f"table={name!r} has no pages in {path}; pick another table.")
    if mode == "sqlite-zero-page":
        number = rng.choice(pages)
        start = (number - 1) * page
        data[start:start + page] = bytes(page)
        path.write_bytes(bytes(data))
        return SQLITE_NAME, f"zeroed page {number} of table {name}"
    spots = [(rng.choice(pages) - 1) * page + rng.randrange(8, page) for _ in range(16)]
    _flip(data, spots, rng)
    path.write_bytes(bytes(data))
    return SQLITE_NAME, f"flipped 16 bits in pages of table {name}"


def _pages_of(path: Path, table: str) -> list[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno",
                            (table,)).fetchall()
    finally:
        conn.close()
    return [int(r[0]) for r in rows]


def _corrupt_segment(root: Path, segment: str, mode: str, rng: random.Random,
                     saved: dict[str, bytes | None]) -> tuple[tuple[str, ...], str]:
    folder = root / segment
    if mode == "segment-delete":
        rels = [f"{segment}/{p.name}" for p in sorted(folder.iterdir()) if p.is_file()]
        for rel in rels:
            _save(root, rel, saved)
        shutil.rmtree(folder)
        return tuple(rels), f"deleted the vector segment directory ({len(rels)} files)"
    stem, _, how = mode.rpartition("-")
    file = _HNSW["index_metadata" if mode == "metadata-garbage" else stem]
    rel = f"{segment}/{file}"
    if not (root / rel).is_file():
        raise ValueError(f"mode={mode!r} needs {rel}, which this store does not have yet. "
                         "Add records past the collection's sync_threshold first.")
    path = _save(root, rel, saved)
    data = bytearray(path.read_bytes())
    if mode == "metadata-garbage":
        path.write_bytes(rng.randbytes(len(data)))
        return (rel,), f"overwrote {rel} with {len(data)} random bytes"
    if how == "graph":
        elements = _flip_neighbours(root / segment / _HNSW["header"], data, rng)
        path.write_bytes(bytes(data))
        return (rel,), f"flipped a high bit of a neighbour id in {elements} elements of {rel}"
    if how == "delete":
        path.unlink()
        return (rel,), f"deleted {rel}"
    if how == "truncate":
        path.write_bytes(bytes(data[:len(data) // 2]))
        return (rel,), f"truncated {rel} from {len(data)} to {len(data) // 2} bytes"
    if not data:
        raise ValueError(f"mode={mode!r}: {rel} is empty, there is nothing to flip.")
    _flip(data, [rng.randrange(len(data)) for _ in range(16)], rng)
    path.write_bytes(bytes(data))
    return (rel,), f"flipped 16 bits of {rel}"


def _flip_neighbours(header: Path, data: bytearray, rng: random.Random) -> int:
    """Flip a bit of the top byte of one live level-0 neighbour id in up to 16 elements.

    Layout from hnswlib's ``header.bin`` (after chroma's 4-byte version): each element
    of ``data_level0.bin`` starts with its neighbour count (2 bytes, then 2 unused) and
    its neighbour ids (4 bytes each, little-endian).
    """
    raw = header.read_bytes() if header.is_file() else b""
    count, size = struct.unpack_from("<QQ", raw, 20) if len(raw) >= 36 else (0, 0)
    if size <= 4:
        raise ValueError(f"mode='data_level0-graph' needs an intact {header.name} to find "
                         "the element layout; this store's is missing or damaged.")
    linked = [i for i in range(min(count, len(data) // size))
              if int.from_bytes(data[i * size:i * size + 2], "little")]
    if not linked:
        raise ValueError("mode='data_level0-graph': no element of data_level0.bin has "
                         "neighbours yet. Add more records first.")
    chosen = rng.sample(linked, min(16, len(linked)))
    for i in chosen:
        slot = rng.randrange(int.from_bytes(data[i * size:i * size + 2], "little"))
        data[i * size + 4 + 4 * slot + 3] ^= 1 << rng.randrange(7)
    return len(chosen)


_WRITES = ("add", "upsert", "update", "delete")


def fail_during(collection: Any, op: str, *, after: int = 0,
                exc: BaseException | None = None, clock: Clock | None = None,
                history: History | None = None) -> AbstractContextManager[dict[str, int]]:
    """Make ``collection.<op>`` fail part-way: ``after`` records land, then it raises.

    ``op`` is add, upsert, update or delete; the count runs across calls, so a later call
    fails at once. Raises ``exc`` (default ``FaultInjected``). Yields a dict with the
    records written (``"written"``) and failures raised (``"failed"``). Events go to
    ``history`` (or the active one: the test's), stamped by its clock.
    """
    if not isinstance(op, str) or op not in _WRITES:
        raise (ValueError if isinstance(op, str) else TypeError)(
            f"op={validate.show(op)} is not a write. Pass add, upsert, update or delete.")
    after = validate.count(after, "after", low=0, what="a count of records",
                           accepted="an int >= 0")
    validate.check(exc is None or isinstance(exc, BaseException), "exc", exc,
                   what="an exception", accepted="an exception instance such as "
                   "TimeoutError('disk'), or None for FaultInjected", kind=TypeError)
    validate.check(callable(getattr(collection, op, None)), "collection", collection,
                   what=f"a collection with {op}()", accepted="a chromadb Collection",
                   kind=TypeError)
    return _failing(collection, op, after=after, exc=exc, clock=validate.clock(clock),
                    history=validate.history(history))


@contextmanager
def _failing(collection: Any, op: str, *, after: int, exc: BaseException | None, clock: Clock,
             history: History | None) -> Iterator[dict[str, int]]:
    """``fail_during`` with its arguments checked."""
    original = getattr(collection, op)
    stats = {"written": 0, "failed": 0}

    def failing(ids: Any = None, **kwargs: Any) -> Any:
        id_list = [ids] if isinstance(ids, str) else list(ids or [])
        room = max(0, after - stats["written"])
        if room >= len(id_list):
            stats["written"] += len(id_list)
            return original(ids=id_list, **kwargs)
        if room:
            part = {k: (v[:room] if isinstance(v, Sequence) or hasattr(v, "tolist") else v)
                    for k, v in kwargs.items() if v is not None}
            original(ids=id_list[:room], **part)
            stats["written"] += room
        stats["failed"] += 1
        emit(FAULT_FIRED, name, clock, history=history, family="chroma", action="raise",
             trigger=f"after {after}", call=stats["failed"])
        raise exc if exc is not None else FaultInjected(
            f"Injected failure in {op} after {stats['written']} records", failpoint=name)

    name = f"chroma.{op}"
    emit(FAULT_ARMED, name, clock, history=history, family="chroma", fault="fail_during",
         after=after)
    try:
        with patched(collection, op, failing, raw=True):
            yield stats
    finally:
        emit(FAULT_DISARMED, name, clock, history=history, family="chroma",
             fault="fail_during", failed=stats["failed"])


@dataclass(frozen=True)
class KillReport:
    """A SIGKILLed writer: ids acknowledged before the kill and the batch in flight."""

    acked: tuple[str, ...]
    in_flight: tuple[str, ...]
    returncode: int | None


_WRITER = """
import json, random, sys
import chromadb
from chromadb.config import Settings
spec = json.loads(sys.argv[1])
client = chromadb.PersistentClient(path=spec["path"], settings=Settings(anonymized_telemetry=False))
col = client.get_or_create_collection(spec["collection"], embedding_function=None)
rng = random.Random(spec["seed"])
for b in range(spec["batches"]):
    ids = [f"{spec['prefix']}{b}-{i}" for i in range(spec["batch_size"])]
    vectors = [[rng.random() for _ in range(spec["dim"])] for _ in ids]
    if spec["op"] == "delete":
        col.delete(ids=ids)
    else:
        getattr(col, spec["op"])(ids=ids, embeddings=vectors)
    print("ACK", b, flush=True)
"""


def kill_during(store: Path | str, collection: str, *, op: str = "add", dim: int = 8,
                batches: int = 20, batch_size: int = 50, kill_after: int = 2,
                prefix: str = "kill-", seed: int = 0, timeout: float = 60.0,
                clock: Clock | None = None, history: History | None = None) -> KillReport:
    """Run a writer process on ``store`` and SIGKILL it once ``kill_after`` batches are acked.

    The writer sends batches of ``batch_size`` records (``prefix<batch>-<i>``) through
    ``op``; it is killed while the next batch is in flight, or at ``timeout``.
    """
    if op not in ("add", "upsert", "delete"):
        raise ValueError(f"op={op!r} is not supported. Pass add, upsert or delete.")
    history = validate.history(history)
    if not 1 <= kill_after < batches:
        raise ValueError(f"kill_after={kill_after!r} is out of range. Pass 1 <= kill_after "
                         f"< batches ({batches}).")
    spec = {"path": str(store), "collection": collection, "op": op, "dim": dim,
            "batches": batches, "batch_size": batch_size, "prefix": prefix, "seed": seed}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, json.dumps(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    acked = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ACK"):
                acked += 1
                if acked >= kill_after:
                    break
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    finally:
        timer.cancel()
        timer.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    ids = [f"{prefix}{b}-{i}" for b in range(batches) for i in range(batch_size)]
    done = acked * batch_size
    source = store_label(store)
    emit(FAULT_ARMED, source, clock, history=history, family="chroma", fault="kill_during")
    emit(FAULT_FIRED, source, clock, history=history, family="chroma", action="kill",
         trigger=f"after {acked} batches", call=1, op=op, collection=collection)
    emit(FAULT_DISARMED, source, clock, history=history, family="chroma", fault="kill_during")
    return KillReport(tuple(ids[:done]), tuple(ids[done:done + batch_size]), proc.returncode)
