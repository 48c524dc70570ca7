"""Backups: consistent copies with manifests, verified restores, safe archives, retention."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import BackupError
from pytest_resilience._events import History, recording
from pytest_resilience.chroma._backup import BackupManager
from pytest_resilience.chroma._integrity import verify_store

pytest.importorskip("chromadb", reason="Chroma tests need chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")


@pytest.mark.parametrize("fmt", ["dir", "tar", "tar.gz", "tar.zst"])
def test_backup_restores_every_record(chroma_store, fmt) -> None:
    manager = BackupManager(chroma_store.path, format=fmt)
    info = manager.create()
    assert info.format == fmt
    assert info.counts == {"memories": 300}
    assert set(info.manifest["files"]) >= {"chroma.sqlite3"}
    assert info.manifest["chroma_version"]
    assert manager.verify(info).ok
    col = chroma_store.collection()
    col.delete(ids=[f"rec-{i:05d}" for i in range(100)])
    chroma_store.close()
    report = manager.restore()
    assert (report.backup, report.dry_run) == (info.name, False)
    assert chroma_store.snapshot() == chroma_store.records
    assert verify_store(chroma_store.path, probe=False).ok


def test_backup_while_open_is_consistent(chroma_store) -> None:
    col = chroma_store.collection()
    col.add(ids=["live-1"], embeddings=[[0.5] * 8])
    info = BackupManager(chroma_store.path, format="dir").create()
    assert info.counts == {"memories": 301}
    assert BackupManager(chroma_store.path).verify(info.name).ok


def test_dry_run_leaves_the_store(chroma_store) -> None:
    manager = BackupManager(chroma_store.path, format="tar.gz")
    manager.create()
    chroma_store.collection().delete(ids=["rec-00000"])
    chroma_store.close()
    report = manager.restore(dry_run=True)
    assert report.dry_run
    assert "rec-00000" not in chroma_store.snapshot()


def test_tampered_backup_fails_verify_and_restore_keeps_original(chroma_store) -> None:
    manager = BackupManager(chroma_store.path, format="dir")
    info = manager.create()
    victim = next(p for p in info.path.rglob("data_level0.bin"))
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = manager.verify()
    assert not result.ok
    assert any("data_level0.bin' does not match the SHA-256 in the manifest" in f
               for f in result.findings)
    chroma_store.collection().delete(ids=["rec-00001"])
    chroma_store.close()
    before = chroma_store.snapshot()
    chroma_store.close()
    with pytest.raises(BackupError, match="does not match the SHA-256 in the manifest"):
        manager.restore()
    assert chroma_store.snapshot() == before
    leftovers = [p.name for p in chroma_store.path.parent.iterdir() if ".restore-" in p.name]
    assert leftovers == []


@pytest.mark.parametrize(("name", "kind"), [
    ("../escape.txt", tarfile.REGTYPE),
    ("/abs.txt", tarfile.REGTYPE),
    ("link", tarfile.SYMTYPE),
])
def test_restore_refuses_escaping_members(chroma_store, tmp_path, name, kind) -> None:
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="tar")
    info = manager.create()
    with tarfile.open(info.path, "a") as tar:
        member = tarfile.TarInfo(name)
        member.type = kind
        if kind == tarfile.SYMTYPE:
            member.linkname = "/etc/passwd"
            tar.addfile(member)
        else:
            member.size = 3
            tar.addfile(member, io.BytesIO(b"bad"))
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(BackupError, match=r"^Refusing backup .*: member '(\.\./escape\.txt|"
                                          r"/abs\.txt|link)' (would escape the restore "
                                          r"directory|is a symlink)"):
        manager.restore()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (tmp_path / "escape.txt").exists()
    assert chroma_store.snapshot() == chroma_store.records


def test_prune_by_count_and_age_keeps_the_newest(chroma_store) -> None:
    clock = VirtualClock()
    manager = BackupManager(chroma_store.path, format="dir", clock=clock)
    made = []
    for _ in range(4):
        made.append(manager.create())
        clock.advance(3600)
    assert [b.name for b in manager.list()] == [b.name for b in made]
    assert [b.name for b in manager.prune(keep=3, dry_run=True)] == [made[0].name]
    removed = manager.prune(max_age=2.5 * 3600)
    assert [b.name for b in removed] == [made[1].name, made[0].name]
    assert [b.name for b in manager.list()] == [made[2].name, made[3].name]
    clock.advance(10 * 3600)
    assert [b.name for b in manager.prune(max_age=1)] == [made[2].name]
    latest = manager.latest()
    assert latest is not None
    assert latest.name == made[3].name


def test_events_and_async_paths(chroma_store) -> None:
    manager = BackupManager(chroma_store.path, format="tar.gz")
    history = History()

    async def main() -> None:
        info = await manager.acreate()
        assert (await manager.averify(info)).ok
        await manager.arestore(info, dry_run=True)

    chroma_store.close()
    with recording(history):
        asyncio.run(main())
    backup, restore = history.select("chroma.")
    assert (backup.kind, backup.source, backup.attrs["mode"], backup.attrs["outcome"]) == \
        ("chroma.backup", str(chroma_store.path), "tar.gz", "ok")
    assert (restore.kind, restore.attrs["mode"], restore.attrs["outcome"]) == \
        ("chroma.restore", "dry_run", "ok")


def test_backup_seals_the_source(chroma_store) -> None:
    info = BackupManager(chroma_store.path, format="dir").create()
    seals = sorted((chroma_store.path / ".resilience" / "seals").glob("seal-*.json"))
    newest = json.loads(seals[-1].read_text())
    assert newest["backup"] == info.name
    assert "probe" in newest  # unchanged files: the earlier sealed answers carry over


def test_bad_arguments_name_the_fix(tmp_path) -> None:
    with pytest.raises(ValueError) as info:
        BackupManager(tmp_path, format="zip")
    assert str(info.value) == ("format='zip' is not a backup format. Pass one of dir, tar, "
                               "tar.gz, tar.zst or 'auto'.")
    with pytest.raises(ValueError, match="keep=0 is not a positive integer"):
        BackupManager(tmp_path, keep=0)
    with pytest.raises(BackupError, match="is not a Chroma store"):
        BackupManager(tmp_path).create()
    with pytest.raises(BackupError, match="No backups of"):
        BackupManager(tmp_path).restore()
