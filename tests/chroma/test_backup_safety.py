"""Restores write only what the manifest names and verifies, within limits; signed and
encrypted backups fail loudly when anything is off.

Regressions for issue 14: defect 4 (a symlinked ``chroma.sqlite3`` in a ``dir`` backup
survived the restore and a later write changed a file outside the store), defect 5
(members under ``.resilience/`` were never verified, so a planted journal was restored)
and defect 6 (no size or file-count limit: a tiny archive unpacked gigabytes).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from pytest_resilience import BackupError
from pytest_resilience.chroma import BackupManager

pytest.importorskip("chromadb", reason="Chroma tests need chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")

KEY = "k" * 32


def _manifest(info_path: Path) -> dict[str, object]:
    return json.loads(Path(f"{info_path}.json").read_text())


def _rewrite_manifest(info_path: Path, manifest: dict[str, object]) -> None:
    """What an attacker with write access to the backups does: both copies agree."""
    text = json.dumps(manifest, sort_keys=True)
    Path(f"{info_path}.json").write_text(text)
    inner = info_path / ".resilience" / "backup-manifest.json"
    if inner.exists():
        inner.write_text(text)


def _untouched(chroma_store, before: dict[str, object]) -> None:
    assert chroma_store.snapshot() == before
    chroma_store.close()
    assert [p for p in chroma_store.path.parent.iterdir() if ".restore-" in p.name] == []


@pytest.mark.parametrize("link", ["symlink", "hardlink", "fifo"])
def test_a_dir_backup_with_a_link_or_special_file_is_refused(chroma_store, tmp_path: Path,
                                                             link: str) -> None:
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="dir")
    info = manager.create()
    outside = tmp_path / "outside.sqlite3"
    member = info.path / "chroma.sqlite3"
    shutil.move(member, outside)
    if link == "symlink":
        member.symlink_to(outside)
    elif link == "hardlink":
        os.link(outside, member)
    else:
        os.mkfifo(member)
    before = chroma_store.snapshot()
    chroma_store.close()
    original = outside.read_bytes()
    kind = {"symlink": "a symlink", "hardlink": "a hardlink (2 names)", "fifo": "a FIFO"}[link]
    with pytest.raises(BackupError) as info_error:
        manager.restore(info, target=chroma_store.path)
    assert str(info_error.value) == (
        f"Refusing backup {info.path}: member 'chroma.sqlite3' is {kind}; links and special "
        "files are never restored. Nothing was restored.")
    assert not manager.verify(info, probe=False).ok
    assert outside.read_bytes() == original
    _untouched(chroma_store, before)


@pytest.mark.parametrize(("kind", "described"), [
    (tarfile.SYMTYPE, "a symlink"), (tarfile.LNKTYPE, "a hardlink"),
    (tarfile.FIFOTYPE, "a FIFO"), (tarfile.CHRTYPE, "a device"),
])
def test_an_archive_with_a_link_or_device_member_is_refused(chroma_store, tmp_path: Path,
                                                            kind: bytes,
                                                            described: str) -> None:
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="tar")
    info = manager.create()
    data = info.path.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
                   for m in tar.getmembers()]
    with tarfile.open(info.path, "w") as tar:  # chroma.sqlite3 replaced by the bad member
        for m, body in members:
            if m.name == "chroma.sqlite3":
                bad = tarfile.TarInfo("chroma.sqlite3")
                bad.type = kind
                bad.linkname = "/etc/passwd"
                tar.addfile(bad)
            else:
                tar.addfile(m, io.BytesIO(body) if body is not None else None)
    before = chroma_store.snapshot()
    chroma_store.close()
    with pytest.raises(BackupError, match=f"member 'chroma.sqlite3' is {described}; links "
                                          "and special files are never restored"):
        manager.restore(info)
    _untouched(chroma_store, before)


@pytest.mark.parametrize("listed", [True, False])
def test_a_planted_journal_is_never_restored(chroma_store, tmp_path: Path,
                                            listed: bool) -> None:
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="dir")
    info = manager.create()
    planted = info.path / ".resilience" / "journal" / "tx-planted.jsonl"
    planted.parent.mkdir(parents=True)
    planted.write_text("anything at all\n")
    if listed:  # the forger also lists it, with the right checksum
        manifest = _manifest(info.path)
        manifest["files"][".resilience/journal/tx-planted.jsonl"] = {  # type: ignore[index]
            "size": planted.stat().st_size,
            "sha256": hashlib.sha256(planted.read_bytes()).hexdigest()}
        _rewrite_manifest(info.path, manifest)
    before = chroma_store.snapshot()
    chroma_store.close()
    message = ("its manifest names '.resilience/journal/tx-planted.jsonl': .resilience/ "
               "(journals, locks, seals, the store's identity) is never restored from a "
               "backup" if listed else
               "member '.resilience/journal/tx-planted.jsonl' is not in the manifest")
    with pytest.raises(BackupError) as error:
        manager.restore(manager.list()[-1])
    assert str(error.value) == f"Refusing backup {info.path}: {message}. Nothing was restored."
    _untouched(chroma_store, before)
    assert not (chroma_store.path / ".resilience" / "journal").exists()


def test_limits_are_checked_against_the_manifest_before_reading_the_archive(
        chroma_store, tmp_path: Path) -> None:
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="tar.gz")
    info = manager.create()
    manifest = _manifest(info.path)
    manifest["files"] = {f"seg/{i:05d}.bin": {"size": 1, "sha256": "0" * 64}
                         for i in range(20_000)}
    Path(f"{info.path}.json").write_text(json.dumps(manifest))
    info.path.write_bytes(os.urandom(1000))  # not even an archive: never opened
    small = BackupManager(chroma_store.path, directory=tmp_path / "b", max_files=1000,
                          max_bytes=10_000, max_file_bytes=10)
    with pytest.raises(BackupError) as refused:
        small.restore(small.list()[-1])
    assert str(refused.value) == (f"Refusing backup {info.path}: its manifest lists 20000 "
                                  "files, more than max_files=1000. Nothing was restored.")
    manifest["files"] = {"chroma.sqlite3": {"size": 2 << 30, "sha256": "0" * 64}}
    Path(f"{info.path}.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match=r"'chroma.sqlite3' is 2147483648 bytes, more than "
                                          r"max_file_bytes=10\."):
        small.restore(small.list()[-1])
    assert [p for p in chroma_store.path.parent.iterdir() if ".restore-" in p.name] == []


def test_a_member_larger_than_the_manifest_says_is_refused_before_it_is_written(
        chroma_store, tmp_path: Path) -> None:
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="tar")
    info = manager.create()
    manifest = _manifest(info.path)
    manifest["files"]["chroma.sqlite3"]["size"] = 3  # type: ignore[index]
    Path(f"{info.path}.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match=r"member 'chroma.sqlite3' is \d+ bytes, the "
                                          r"manifest says 3"):
        manager.restore(manager.list()[-1])


# -- signed backups ----------------------------------------------------------------------


def test_signed_backups_verify_and_restore_with_their_key(chroma_store, tmp_path: Path,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("BACKUP_KEY", KEY)
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="tar.zst",
                            key_env="BACKUP_KEY")
    info = manager.create()
    assert info.signed
    assert "k" * 16 not in Path(f"{info.path}.json").read_text()
    result = manager.verify(info)
    assert (result.ok, result.authenticated, result.notes) == (True, True, ())
    unkeyed = BackupManager(chroma_store.path, directory=tmp_path / "b").verify(info,
                                                                              probe=False)
    assert unkeyed.ok
    assert not unkeyed.authenticated
    assert unkeyed.notes[0].endswith("but no key was given, so the signature was not checked")
    chroma_store.collection().delete(ids=["rec-00003"])
    chroma_store.close()
    manager.restore(info)
    assert "rec-00003" in chroma_store.snapshot()


def test_unsigned_backups_are_allowed_but_verify_says_so(chroma_store, tmp_path: Path) -> None:
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="tar")
    result = manager.verify(manager.create(), probe=False)
    assert result.ok
    assert result.notes == ("the backup is not signed: anyone who can write the backup "
                            "directory could have changed it undetected (create backups "
                            "with key_file= or key_env=)",)


@pytest.mark.parametrize("attack", ["counts", "unsigned", "other-key"])
def test_restore_with_a_key_refuses_what_does_not_verify(chroma_store, tmp_path: Path,
                                                         attack: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    other = tmp_path / "other-key"
    other.write_text("x" * 40)
    signer = BackupManager(chroma_store.path, directory=tmp_path / "b", format="dir",
                           key_file=other if attack == "other-key" else key_file)
    info = (BackupManager(chroma_store.path, directory=tmp_path / "b", format="dir")
            if attack == "unsigned" else signer).create()
    if attack == "counts":
        manifest = _manifest(info.path)
        manifest["counts"] = {"memories": 1}
        _rewrite_manifest(info.path, manifest)
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", key_file=key_file)
    before = chroma_store.snapshot()
    chroma_store.close()
    with pytest.raises(BackupError) as error:
        manager.restore(manager.list()[-1])
    why = {
        "counts": "the manifest's signature does not verify: it was changed after signing",
        "unsigned": "the manifest is not signed, and a signing key was given",
        "other-key": "the manifest was signed with key ",
    }[attack]
    assert f"failed verification; {chroma_store.path} was not touched: {why}" in \
        str(error.value)
    assert not manager.verify(manager.list()[-1], probe=False).ok
    _untouched(chroma_store, before)


def test_a_key_must_come_from_a_file_or_a_named_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match=r"^key_env='NO_SUCH_KEY' names no environment "
                                         r"variable that is set\."):
        BackupManager(tmp_path, key_env="NO_SUCH_KEY")
    short = tmp_path / "short"
    short.write_text("abc")
    with pytest.raises(ValueError, match=r"holds a key of 3 bytes\. Pass a key of at least "
                                         r"16 bytes"):
        BackupManager(tmp_path, key_file=short)
    with pytest.raises(ValueError, match="were both given"):
        BackupManager(tmp_path, key_file=short, key_env="X")
    assert KEY[:16] not in repr(BackupManager(tmp_path, encrypt_to=KEY))


# -- encrypted backups -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.zst"])
def test_encrypted_backups_round_trip_and_hide_their_contents(chroma_store, tmp_path: Path,
                                                              fmt: str) -> None:
    pytest.importorskip("cryptography", reason="encrypted backups need the crypto extra")
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format=fmt,
                            encrypt_to=KEY)
    info = manager.create()
    assert info.encrypted
    assert b"chroma.sqlite3" not in info.path.read_bytes()
    assert b"SQLite format 3" not in info.path.read_bytes()
    chroma_store.collection().delete(ids=["rec-00009"])
    chroma_store.close()
    manager.restore(info)
    assert "rec-00009" in chroma_store.snapshot()


@pytest.mark.parametrize("damage", ["wrong-key", "flipped", "truncated", "no-key"])
def test_a_wrong_key_or_damaged_ciphertext_is_a_clear_error(chroma_store, tmp_path: Path,
                                                            damage: str) -> None:
    pytest.importorskip("cryptography", reason="encrypted backups need the crypto extra")
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="tar.zst",
                            encrypt_to=KEY)
    info = manager.create()
    data = bytearray(info.path.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncated":
        data = data[:-30]
    info.path.write_bytes(bytes(data))
    reader = BackupManager(chroma_store.path, directory=tmp_path / "b",
                           encrypt_to=None if damage == "no-key" else
                           ("w" * 32 if damage == "wrong-key" else KEY))
    before = chroma_store.snapshot()
    chroma_store.close()
    with pytest.raises(BackupError) as error:
        reader.restore(info)
    if damage == "no-key":
        assert str(error.value) == (f"Backup {info.name} is encrypted. Pass encrypt_to= with "
                                    "the key it was made with.")
    else:
        assert str(error.value).startswith(f"Backup {info.path} cannot be decrypted: ")
        assert str(error.value).endswith("The key is wrong or the file was changed; nothing "
                                         "of it was used.")
    _untouched(chroma_store, before)


def test_dir_backups_cannot_be_encrypted(chroma_store, tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="encrypted backups need the crypto extra")
    manager = BackupManager(chroma_store.path, directory=tmp_path / "b", format="dir",
                            encrypt_to=KEY)
    with pytest.raises(BackupError, match="format='dir' cannot be encrypted"):
        manager.create()
