"""verify_store / seal_store: healthy stores pass, every change since the seal is named."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from faults.chroma import classify
from pytest_resilience._errors import CorruptionDetected
from pytest_resilience.chroma._integrity import averify_store, seal_store, verify_store

pytest.importorskip("chromadb", reason="Chroma tests need chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")


def test_sealed_store_verifies_clean(chroma_store) -> None:
    report = verify_store(chroma_store.path)
    assert report.ok, report.findings
    assert report.counts == {"memories": 300}
    assert report.probe is not None
    assert report.probe.status == "ok"
    assert report.probe.collections["memories"]["rows"] == 300
    assert report.notes == ()


def test_opening_and_reading_does_not_break_the_seal(chroma_store) -> None:
    before = (chroma_store.path / "chroma.sqlite3").read_bytes()
    for _ in range(3):  # each open rewrites the header counters and adds a row
        assert chroma_store.collection().count() == 300
        chroma_store.close()
    assert (chroma_store.path / "chroma.sqlite3").read_bytes() != before
    assert verify_store(chroma_store.path, probe=False).ok


def _page(db: Path, table: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT pageno FROM dbstat WHERE name = ?",
                                (table,)).fetchone()[0])
    finally:
        conn.close()


def _spot(data: bytes, where: str, acquire_write: int) -> int:
    """A byte offset in the file: in the header page or in acquire_write's page."""
    if where == "header: application id":
        return 68
    page, header = ((0, 100) if where.startswith("header") else
                    ((acquire_write - 1) * 4096, 0))
    at = page + header
    cells = int.from_bytes(data[at + 3:at + 5], "big")
    top = int.from_bytes(data[at + 5:at + 7], "big")
    pointers = at + (12 if data[at] in (2, 5) else 8) + 2 * cells
    if where.endswith("free space"):
        return (pointers + page + top) // 2
    return page + 4095 if where.endswith("sealed row") else page + 1


@pytest.mark.parametrize("where", [
    "header: application id", "header page: free space", "acquire_write: sealed row",
    "acquire_write: free space", "acquire_write: page header"])
def test_damage_beside_what_chroma_rewrites_is_named(chroma_store, where) -> None:
    db = chroma_store.path / "chroma.sqlite3"
    for _ in range(2):  # chroma's own rewrites happen before and beside the damage
        chroma_store.collection().count()
        chroma_store.close()
    data = bytearray(db.read_bytes())
    offset = _spot(data, where, _page(db, "acquire_write"))
    data[offset] ^= 0xFF
    db.write_bytes(bytes(data))
    report = verify_store(chroma_store.path, probe=False)
    assert [f.target for f in report.findings if f.check == "seal"] == ["chroma.sqlite3"]


def test_a_write_since_the_seal_is_named_and_strict_raises(chroma_store) -> None:
    chroma_store.collection().delete(ids=["rec-00000"])
    chroma_store.close()
    report = verify_store(chroma_store.path, probe=False)
    assert "chroma.sqlite3" in report.files()
    assert any(f.check == "counts" and f.message == "299 records, sealed 300"
               for f in report.findings)
    with pytest.raises(CorruptionDetected) as info:
        verify_store(chroma_store.path, probe=False, strict=True)
    assert info.value.path == str(chroma_store.path)
    assert "[counts] memories: 299 records, sealed 300" in info.value.findings
    seal_store(chroma_store.path)  # a new seal accepts the new state
    assert verify_store(chroma_store.path).ok


def test_unsealed_store_is_checked_without_the_seal(chroma_store) -> None:
    for seal in (chroma_store.path / ".resilience" / "seals").iterdir():
        seal.unlink()
    report = verify_store(chroma_store.path, probe=False)
    assert report.ok
    assert report.notes == ("no seal: byte-level changes cannot be detected (run seal_store)",)


def test_hot_journal_is_noted_not_failed(chroma_store) -> None:
    (chroma_store.path / "chroma.sqlite3-journal").write_bytes(b"")
    report = verify_store(chroma_store.path, probe=False)
    assert report.ok
    assert report.notes[0].startswith("chroma.sqlite3-journal: a hot journal")


def test_missing_store_is_a_finding_not_a_crash(tmp_path) -> None:
    report = asyncio.run(averify_store(tmp_path / "nope", probe=False))
    assert [str(f) for f in report.findings] == [
        f"[files] {tmp_path / 'nope'}: the store directory does not exist"]


def test_a_probe_past_its_timeout_is_a_hang_and_the_child_is_gone(chroma_store) -> None:
    # no chromadb child answers within a millisecond: the probe is bounded, not awaited
    report = verify_store(chroma_store.path, timeout=0.001)
    assert [str(f) for f in report.findings] == [
        "[probe] chromadb: hang: no answer within 0.001 s"]
    assert str(classify(chroma_store.path, timeout=0.001)) == "hang"


def test_sealing_a_broken_store_is_refused(chroma_store) -> None:
    (chroma_store.path / "chroma.sqlite3").write_bytes(b"")
    with pytest.raises(CorruptionDetected):
        seal_store(chroma_store.path, probe=False)
