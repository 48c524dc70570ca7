"""``seal_store`` records what a healthy store looks like; ``verify_store`` checks one.

Many corruptions pass every check chroma and SQLite offer (zeroed free pages, bit flips
in ``length.bin`` or ``link_lists.bin``), so ``verify_store`` also compares the store with
its newest seal: per-file checksums, record counts and query answers recorded on the
same store. Every probe that opens the store with chromadb runs in a child process on a
copy, so a crash or a panic inside chromadb never reaches the caller.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_resilience._clock import Clock, SystemClock
from pytest_resilience._errors import CorruptionDetected
from pytest_resilience.chroma._files import (
    SIDE_DIR,
    SQLITE_NAME,
    checksum_files,
    chroma_version,
    collection_counts,
    vector_segments,
)
from pytest_resilience.chroma._probe import ProbeResult, probe_store
from pytest_resilience.chroma._sqlite_seal import sqlite_changes

__all__ = [
    "Finding",
    "IntegrityReport",
    "averify_store",
    "latest_seal",
    "seal_store",
    "verify_store",
    "write_seal",
]

SEAL_DIR = f"{SIDE_DIR}/seals"
_HNSW_FILES = ("header.bin", "data_level0.bin", "length.bin", "link_lists.bin")
_PICKLE = "index_metadata.pickle"


@dataclass(frozen=True)
class Finding:
    """One problem: which check found it, in which file or collection, and what."""

    check: str
    target: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.target}: {self.message}"


@dataclass(frozen=True)
class IntegrityReport:
    """The result of ``verify_store``: ``ok`` when there are no findings."""

    path: str
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    seal: str | None = None
    probe: ProbeResult | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no check found anything."""
        return not self.findings

    def files(self) -> set[str]:
        """The files and collections named by the findings."""
        return {f.target for f in self.findings}

    def raise_if_corrupt(self) -> None:
        """Raise ``CorruptionDetected`` listing every finding, if there are any."""
        if self.findings:
            raise CorruptionDetected(
                f"Store {self.path} failed {len(self.findings)} integrity check(s): "
                + "; ".join(str(f) for f in self.findings[:5]),
                findings=[str(f) for f in self.findings],
                path=self.path,
            )


def write_seal(path: Path, manifest: dict[str, Any]) -> Path:
    """Store ``manifest`` as the store's newest seal and return its path."""
    seals = path / SEAL_DIR
    seals.mkdir(parents=True, exist_ok=True)
    index = len(list(seals.glob("seal-*.json")))
    target = seals / f"seal-{index:06d}.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
    tmp.replace(target)
    return target


def latest_seal(path: Path | str) -> tuple[Path, dict[str, Any]] | None:
    """The newest seal of the store and its manifest, or ``None``."""
    seals = sorted((Path(path) / SEAL_DIR).glob("seal-*.json"))
    if not seals:
        return None
    return seals[-1], json.loads(seals[-1].read_text(encoding="utf-8"))


def seal_store(
    path: Path | str,
    *,
    probe: bool = True,
    timeout: float = 60.0,
    clock: Clock | None = None,
) -> Path:
    """Record the closed store's checksums, counts and query answers as its newest seal.

    Close every client first (``close_store``). With ``probe=True`` the answers of a
    few self-queries are recorded too; a store that fails the probe is not sealed
    (``CorruptionDetected``).
    """
    root = Path(path)
    if not (root / SQLITE_NAME).is_file():
        raise CorruptionDetected(f"{root} holds no {SQLITE_NAME}: nothing to seal.",
                                 findings=[f"{SQLITE_NAME}: missing"], path=str(root))
    try:
        counts = collection_counts(root / SQLITE_NAME)
    except sqlite3.DatabaseError as exc:
        raise CorruptionDetected(f"Refusing to seal {root}: {SQLITE_NAME} is unreadable "
                                 f"({exc}).", findings=[f"{SQLITE_NAME}: {exc}"],
                                 path=str(root)) from exc
    manifest: dict[str, Any] = {
        "version": 1,
        "created": (clock or SystemClock()).time(),
        "chroma_version": chroma_version(),
        "files": checksum_files(root),
        "counts": counts,
    }
    if probe:
        result = probe_store(root, timeout=timeout)
        if result.status != "ok":
            raise CorruptionDetected(
                f"Refusing to seal {root}: the probe ended in {result.status} "
                f"({result.error}).", findings=[f"probe: {result.error}"], path=str(root))
        manifest["probe"] = result.collections
    return write_seal(root, manifest)


def verify_store(
    path: Path | str,
    *,
    strict: bool = False,
    probe: bool = True,
    timeout: float = 60.0,
) -> IntegrityReport:
    """Check the store at ``path`` and return a report; ``strict`` raises instead.

    Checks: SQLite ``quick_check`` and ``integrity_check`` (on a copy, so a hot
    journal is rolled back there, not here), vector segment files present and sized
    consistently, the HNSW id map against SQLite, a child-process probe (open, count,
    read every record, self-queries) and the newest seal (checksums, counts, answers).
    """
    root = Path(path)
    findings: list[Finding] = []
    notes: list[str] = []
    counts: dict[str, int] = {}
    sealed = latest_seal(root)
    seal = sealed[1] if sealed else None
    if not root.is_dir():
        findings.append(Finding("files", str(root), "the store directory does not exist"))
    elif not (root / SQLITE_NAME).is_file():
        findings.append(Finding("files", SQLITE_NAME, "missing"))
    else:
        if (root / f"{SQLITE_NAME}-journal").exists():
            notes.append(f"{SQLITE_NAME}-journal: a hot journal from an interrupted write "
                         "(SQLite rolls it back on the next open)")
        counts = _check_sqlite(root, findings)
        if counts:
            _check_segments(root, counts, findings)
    result: ProbeResult | None = None
    if probe and root.is_dir():
        queries = None
        if seal and "probe" in seal:
            queries = {name: c["queries"] for name, c in seal["probe"].items()}
        result = probe_store(root, queries=queries, timeout=timeout)
        _check_probe(result, counts, seal, findings)
    if seal is None:
        notes.append("no seal: byte-level changes cannot be detected (run seal_store)")
    elif root.is_dir():
        _check_seal(root, seal, counts, findings)
    report = IntegrityReport(str(root), tuple(findings), tuple(notes),
                             str(sealed[0]) if sealed else None, result, counts)
    if strict:
        report.raise_if_corrupt()
    return report


async def averify_store(path: Path | str, *, strict: bool = False, probe: bool = True,
                        timeout: float = 60.0) -> IntegrityReport:  # noqa: ASYNC109
    """``verify_store`` without blocking the event loop."""
    return await asyncio.to_thread(verify_store, path, strict=strict, probe=probe,
                                   timeout=timeout)


def _check_sqlite(root: Path, findings: list[Finding]) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="resilience-verify-") as tmp:
        copy = Path(tmp) / "db"
        copy.mkdir()
        for name in (SQLITE_NAME, f"{SQLITE_NAME}-journal"):
            if (root / name).exists():
                (copy / name).write_bytes((root / name).read_bytes())
        try:
            conn = sqlite3.connect(copy / SQLITE_NAME)
            try:
                for pragma in ("quick_check", "integrity_check"):
                    rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
                    if rows != ["ok"]:
                        findings.append(Finding(f"sqlite.{pragma}", SQLITE_NAME,
                                                "; ".join(map(str, rows[:3]))))
            finally:
                conn.close()
            counts = collection_counts(copy / SQLITE_NAME)
        except sqlite3.DatabaseError as exc:
            findings.append(Finding("sqlite.open", SQLITE_NAME, str(exc)))
            return {}
    if not counts:
        findings.append(Finding("sqlite.schema", SQLITE_NAME,
                                "no collections (an empty or reset database)"))
    return counts


def _check_segments(root: Path, counts: dict[str, int], findings: list[Finding]) -> None:
    db = root / SQLITE_NAME
    for segment, name in vector_segments(db).items():
        folder = root / segment
        if counts.get(name, 0) == 0 and not folder.exists():
            continue
        if not folder.is_dir():
            findings.append(Finding("segments", segment,
                                    f"vector segment directory of {name!r} is missing"))
            continue
        for file in _HNSW_FILES:
            if not (folder / file).is_file():
                findings.append(Finding("segments", f"{segment}/{file}", "missing"))
        _check_sizes(folder, segment, findings)
        _check_id_map(db, folder, segment, findings)


def _check_sizes(folder: Path, segment: str, findings: list[Finding]) -> None:
    length, data = folder / "length.bin", folder / "data_level0.bin"
    if not (length.is_file() and data.is_file()):
        return
    slots = length.stat().st_size // 4
    if length.stat().st_size % 4 or (slots and data.stat().st_size % slots):
        findings.append(Finding("segments", f"{segment}/data_level0.bin",
                                f"size {data.stat().st_size} does not fit {slots} "
                                f"elements (length.bin is {length.stat().st_size} B)"))


class _NoClasses(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load class {module}.{name}")


def _check_id_map(db: Path, folder: Path, segment: str, findings: list[Finding]) -> None:
    target = f"{segment}/{_PICKLE}"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        synced = conn.execute("SELECT seq_id FROM max_seq_id WHERE segment_id = ?",
                              (segment,)).fetchone()
        known = {r[0] for r in conn.execute(
            "SELECT e.embedding_id FROM embeddings e JOIN segments m ON m.id = e.segment_id "
            "JOIN segments v ON v.collection = m.collection "
            "WHERE m.scope = 'METADATA' AND v.id = ?", (segment,))}
        pending = {r[0] for r in conn.execute(
            "SELECT id FROM embeddings_queue WHERE seq_id > ?",
            (int(synced[0]) if synced and isinstance(synced[0], int) else 0,))}
    conn.close()
    if not (folder / _PICKLE).is_file():
        if known - pending:
            findings.append(Finding("segments", target,
                                    f"missing while {len(known - pending)} records are synced"))
        return
    try:
        with (folder / _PICKLE).open("rb") as fh:
            state = _NoClasses(fh).load()
        mapped = set(state["id_to_label"])
    except Exception as exc:
        findings.append(Finding("segments", target, f"unreadable: {type(exc).__name__}: {exc}"))
        return
    missing = known - pending - mapped
    if missing:
        findings.append(Finding("counts", target,
                                f"{len(missing)} records in SQLite have no vector "
                                f"(e.g. {sorted(missing)[0]!r})"))


def _check_probe(result: ProbeResult, counts: dict[str, int], seal: dict[str, Any] | None,
                 findings: list[Finding]) -> None:
    if result.status != "ok":
        detail = result.error or result.status
        findings.append(Finding("probe", "chromadb", f"{result.status}: {detail}"))
        return
    for name, expected in counts.items():
        seen = result.collections.get(name)
        if seen is None:
            findings.append(Finding("probe", name, "collection not found by chromadb"))
        elif seen["rows"] != expected:
            findings.append(Finding("counts", name, f"chromadb returned {seen['rows']} "
                                    f"records, SQLite holds {expected}"))
    recorded = (seal or {}).get("probe") or {}
    for name, before in recorded.items():
        now = result.collections.get(name)
        if now is None:
            if name in counts:
                continue
            findings.append(Finding("probe", name, "sealed collection is gone"))
            continue
        if now["digest"] != before["digest"]:
            findings.append(Finding("probe", name, "records differ from the seal "
                                    "(ids, embeddings, documents or metadatas)"))
        if now["answers"] != before["answers"]:
            findings.append(Finding("probe", name, "query answers differ from the seal"))


def _check_seal(root: Path, seal: dict[str, Any], counts: dict[str, int],
                findings: list[Finding]) -> None:
    now = checksum_files(root)
    before: dict[str, dict[str, Any]] = seal.get("files", {})
    for rel, info in before.items():
        if rel not in now:
            findings.append(Finding("seal", rel, "deleted since the seal"))
        elif now[rel]["size"] != info["size"]:
            findings.append(Finding("seal", rel, f"size {now[rel]['size']} B, sealed "
                                    f"{info['size']} B"))
        elif "content" in info:
            findings.extend(Finding("seal", rel, problem)
                            for problem in sqlite_changes(root / rel, info))
        elif now[rel]["sha256"] != info["sha256"]:
            findings.append(Finding("seal", rel, "content changed since the seal"))
    for rel in sorted(set(now) - set(before)):
        if not rel.endswith("-journal"):
            findings.append(Finding("seal", rel, "new file since the seal"))
    for name, expected in seal.get("counts", {}).items():
        if counts and counts.get(name) != expected:
            findings.append(Finding("counts", name, f"{counts.get(name)} records, sealed "
                                    f"{expected}"))

