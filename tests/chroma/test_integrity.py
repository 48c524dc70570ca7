"""verify_store / seal_store: healthy stores pass, every change since the seal is named."""

from __future__ import annotations

import asyncio

import pytest

from pytest_resilience.chroma.integrity import averify_store, seal_store, verify_store
from pytest_resilience.errors import CorruptionDetected

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
    assert chroma_store.collection().count() == 300
    chroma_store.close()
    assert verify_store(chroma_store.path, probe=False).ok


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


def test_sealing_a_broken_store_is_refused(chroma_store) -> None:
    (chroma_store.path / "chroma.sqlite3").write_bytes(b"")
    with pytest.raises(CorruptionDetected):
        seal_store(chroma_store.path, probe=False)
