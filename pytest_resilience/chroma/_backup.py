"""``BackupManager``: consistent, verifiable backups of a Chroma store, and safe restores.

A backup copies SQLite through its online backup API, then the segment files, writes a
manifest (per-file SHA-256, record counts, chroma version) and seals the source store.
The manifest can be signed (HMAC-SHA256, key from a file or a named environment
variable) and archives encrypted (AES-256-GCM, the ``crypto`` extra).

A restore checks the manifest first (its signature when a key is given, then the limits
on bytes and files), unpacks into a sibling directory only the regular files it names,
hashing each as it is written (``_unpack.py``: the same check for directories and
archives), verifies the copy there (counts, a child-process probe) and only then swaps
it in: a failed restore leaves the original. Nothing under ``.resilience/`` (journals,
locks, the store's identity) ever comes from a backup.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import shutil
import sqlite3
import stat
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._errors import BackupError
from pytest_resilience._events import emit
from pytest_resilience.chroma._backup_crypto import (
    ALGORITHM,
    DecryptingReader,
    EncryptingWriter,
    aead_available,
)
from pytest_resilience.chroma._backup_keys import (
    MIN_KEY_BYTES,
    load_key,
    sign,
    signature_problem,
)
from pytest_resilience.chroma._files import (
    SIDE_DIR,
    SQLITE_NAME,
    checksum_files,
    chroma_version,
    close_store,
    collection_counts,
    copy_store,
    fsync_path,
)
from pytest_resilience.chroma._integrity import latest_seal, write_seal
from pytest_resilience.chroma._lock import LOCK_NAME, StoreLock
from pytest_resilience.chroma._probe import run_probe
from pytest_resilience.chroma._unpack import (
    Limits,
    dir_members,
    manifest_files,
    tar_members,
    unpack,
)
from pytest_resilience.kinds import CHROMA_BACKUP, CHROMA_RESTORE

__all__ = ["FORMATS", "BackupInfo", "BackupManager", "BackupVerification", "RestoreReport"]

FORMATS = ("dir", "tar", "tar.gz", "tar.zst")
MANIFEST = f"{SIDE_DIR}/backup-manifest.json"
MANIFEST_VERSION = 2
#: Default restore limits (override per manager): 64 GiB, 100,000 files, 32 GiB a file.
MAX_BYTES, MAX_FILES, MAX_FILE_BYTES = 64 << 30, 100_000, 32 << 30


def _zstd_available() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class BackupInfo:
    """One backup: its name, file or directory, format, creation time and manifest."""

    name: str
    path: Path
    format: str
    created: float
    manifest: dict[str, Any]

    @property
    def counts(self) -> dict[str, int]:
        """Records per collection when the backup was taken."""
        return dict(self.manifest.get("counts", {}))

    @property
    def signed(self) -> bool:
        """Whether the manifest carries a signature."""
        return isinstance(self.manifest.get("signature"), dict)

    @property
    def encrypted(self) -> bool:
        """Whether the archive is encrypted."""
        return isinstance(self.manifest.get("encryption"), dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins (for ``--json``)."""
        return {"name": self.name, "path": str(self.path), "format": self.format,
                "created": self.created, "counts": self.counts,
                "files": len(self.manifest.get("files", {})), "signed": self.signed,
                "encrypted": self.encrypted}


@dataclass(frozen=True)
class BackupVerification:
    """The result of ``verify``: ``ok`` when there are no findings.

    ``authenticated`` is True only when a signing key was given and the manifest
    verified with it; ``notes`` say what was not checked (an unsigned backup, a
    signature with no key to check it).
    """

    backup: str
    findings: tuple[str, ...]
    authenticated: bool = False
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the signature (if checked), checksums, counts and probe all agree."""
        return not self.findings


@dataclass(frozen=True)
class RestoreReport:
    """What ``restore`` did: which backup, into which directory, and whether it swapped."""

    backup: str
    target: str
    dry_run: bool
    counts: dict[str, int]


class BackupManager:
    """Create, list, verify, restore and prune backups of the store at ``store``.

    Backups go to ``directory`` (default: a sibling ``<store>.backups``) in ``format``:
    ``"dir"``, ``"tar"``, ``"tar.gz"``, ``"tar.zst"`` or ``"auto"`` (zstd when the
    ``zstandard`` package is installed, else gzip). ``keep`` and ``max_age`` (seconds)
    are the defaults of ``prune``. Creating and swapping in a backup hold the store's
    ``StoreLock`` (waiting at most ``lock_timeout`` seconds), so no transaction or other
    locked writer changes the files mid-copy.
    """

    def __init__(
        self,
        store: Path | str,
        *,
        directory: Path | str | None = None,
        format: str = "auto",
        compresslevel: int = 3,
        keep: int | None = None,
        max_age: float | None = None,
        probe_timeout: float = 60.0,
        lock_timeout: float = 30.0,
        key_file: Path | str | None = None,
        key_env: str | None = None,
        encrypt_to: bytes | str | None = None,
        max_bytes: int = MAX_BYTES,
        max_files: int = MAX_FILES,
        max_file_bytes: int = MAX_FILE_BYTES,
        clock: Clock | None = None,
    ) -> None:
        for name, value in (("store", store), ("directory", directory)):
            if value is not None and not isinstance(value, str | os.PathLike):
                raise TypeError(f"{name}={_validate.show(value)} is not a path. Pass a "
                                "directory path.")
        self.store = Path(store)
        self.directory = Path(directory) if directory is not None else \
            self.store.parent / f"{self.store.name}.backups"
        self.format = self._check_format(format)
        self.compresslevel = _validate.count(compresslevel, "compresslevel", high=19,
                                             what="in range", accepted="an int from 1 to "
                                             "19 (gzip caps it at 9)")
        self.keep = None if keep is None else _validate.count(
            keep, "keep", what="a positive integer",
            accepted="an int >= 1 or None to keep any number")
        self.max_age = None if max_age is None else _validate.seconds(
            max_age, "max_age", positive=True, what="a positive number of seconds",
            accepted="seconds > 0 or None for no age limit")
        self.probe_timeout = _validate.seconds(probe_timeout, "probe_timeout", positive=True)
        self.lock_timeout = _validate.seconds(lock_timeout, "lock_timeout")
        self.limits = Limits(
            _validate.count(max_bytes, "max_bytes", low=0),
            _validate.count(max_files, "max_files", low=0),
            _validate.count(max_file_bytes, "max_file_bytes", low=0))
        self._key = load_key(key_file, key_env)
        self._secret = _secret(encrypt_to)
        self.clock = _validate.clock(clock)

    @property
    def signing(self) -> bool:
        """Whether backups are signed and restores demand a valid signature."""
        return self._key is not None

    def __repr__(self) -> str:  # never shows a key
        return (f"BackupManager(store={str(self.store)!r}, directory={str(self.directory)!r}, "
                f"format={self.format!r}, signing={self.signing}, "
                f"encrypting={self._secret is not None})")

    def _lock(self, store: Path, purpose: str) -> StoreLock:
        return StoreLock(store, timeout=self.lock_timeout, purpose=purpose, clock=self.clock)

    @staticmethod
    def _check_format(fmt: str) -> str:
        if fmt == "auto":
            return "tar.zst" if _zstd_available() else "tar.gz"
        if fmt not in FORMATS:
            raise ValueError(f"format={_validate.show(fmt)} is not a backup format. Pass one of "
                             f"{', '.join(FORMATS)} or 'auto'.")
        if fmt == "tar.zst" and not _zstd_available():
            raise ValueError("format='tar.zst' needs the zstandard package. Install "
                             "pytest-resilience[chroma] or pass format='tar.gz'.")
        return fmt

    # -- create ---------------------------------------------------------------------

    def create(self, *, format: str | None = None) -> BackupInfo:
        """Back up the store now and seal it; the copy is taken under the store's lock.

        The manifest is signed when the manager has a key, the archive encrypted when it
        has ``encrypt_to`` (which needs an archive format, not ``dir``).
        """
        fmt = self.format if format is None else self._check_format(format)
        if self._secret is not None and fmt == "dir":
            raise BackupError("format='dir' cannot be encrypted. Pass an archive format "
                              "(tar, tar.gz, tar.zst) with encrypt_to=.", path=str(self.store))
        if not (self.store / SQLITE_NAME).is_file():
            raise BackupError(f"{self.store} is not a Chroma store (no {SQLITE_NAME}).",
                              path=str(self.store))
        self.directory.mkdir(parents=True, exist_ok=True)
        created = self.clock.time()
        name = self._fresh_name(created)
        staging = self.directory / f".staging-{name}"
        final = self.directory / (name if fmt == "dir" else f"{name}.{fmt}")
        try:
            with self._lock(self.store, "a backup"):
                copy_store(self.store, staging, online=True)
                seal = self._seal_of_source(created, name)
            _only_regular_files(staging)
            manifest: dict[str, Any] = {
                "version": MANIFEST_VERSION, "name": name, "format": fmt, "created": created,
                "chroma_version": chroma_version(), "store": str(self.store),
                "files": checksum_files(staging),
                "counts": collection_counts(staging / SQLITE_NAME),
            }
            if self._secret is not None:
                manifest["encryption"] = {"alg": ALGORITHM}
            if self._key is not None:
                manifest = sign(manifest, self._key)
            (staging / SIDE_DIR).mkdir(exist_ok=True)
            (staging / MANIFEST).write_text(json.dumps(manifest, sort_keys=True), "utf-8")
            if fmt == "dir":
                _fsync_tree(staging)
                staging.rename(final)
            else:
                self._write_archive(staging, final, fmt)
            sidecar = final.with_name(final.name + ".json")
            sidecar.write_text(json.dumps(manifest, sort_keys=True), "utf-8")
            fsync_path(sidecar)
            fsync_path(self.directory)  # the backup's and the sidecar's names
        except (OSError, tarfile.TarError, ValueError, sqlite3.DatabaseError) as exc:
            emit(CHROMA_BACKUP, str(self.store), self.clock, path=str(final), mode=fmt,
                 outcome="error", error=repr(exc))
            if isinstance(exc, BackupError):
                raise
            shutil.rmtree(final, ignore_errors=True) if fmt == "dir" else \
                final.unlink(missing_ok=True)
            raise BackupError(f"Backup of {self.store} failed: {exc}",
                              path=str(final)) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        write_seal(self.store, seal)
        emit(CHROMA_BACKUP, str(self.store), self.clock, path=str(final), mode=fmt,
             outcome="ok", records=sum(manifest["counts"].values()),
             signed=self._key is not None, encrypted=self._secret is not None)
        return BackupInfo(name, final, fmt, created, manifest)

    def _fresh_name(self, created: float) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(created))
        base = f"chroma-{stamp}.{int(created * 1e6) % 1_000_000:06d}Z"
        taken = {p.name.split(".tar")[0].removesuffix(".json")
                 for p in self.directory.iterdir()} if self.directory.exists() else set()
        name, n = base, 1
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        return name

    def _write_archive(self, staging: Path, final: Path, fmt: str) -> None:
        tmp = final.with_name(final.name + ".tmp")
        with tmp.open("wb") as raw:
            sink: IO[bytes] = raw if self._secret is None else \
                EncryptingWriter(raw, self._secret)  # type: ignore[assignment]
            with self._compressing(sink, fmt) as stream, \
                    tarfile.open(fileobj=stream, mode="w|") as tar:
                for rel in sorted(p.relative_to(staging) for p in staging.rglob("*")
                                  if p.is_file()):
                    tar.add(staging / rel, arcname=rel.as_posix(), recursive=False)
            sink.close()
        fsync_path(tmp)  # the archive's bytes are durable before its name is
        tmp.replace(final)

    @contextmanager
    def _compressing(self, raw: IO[bytes], fmt: str) -> Iterator[Any]:
        if fmt == "tar.gz":
            import gzip

            with gzip.GzipFile(fileobj=raw, mode="wb",
                               compresslevel=min(self.compresslevel, 9), mtime=0) as gz:
                yield gz
        elif fmt == "tar.zst":
            import zstandard

            compressor = zstandard.ZstdCompressor(level=self.compresslevel, threads=-1)
            with compressor.stream_writer(raw, closefd=False) as zst:
                yield zst
        else:
            yield raw

    def _seal_of_source(self, created: float, name: str) -> dict[str, Any]:
        """The seal of the store as it is copied (written once the backup is complete)."""
        files = checksum_files(self.store)
        seal: dict[str, Any] = {
            "version": 1, "created": created, "backup": name,
            "chroma_version": chroma_version(), "files": files,
            "counts": collection_counts(self.store / SQLITE_NAME),
        }
        previous = latest_seal(self.store)
        if previous and previous[1].get("files") == files and "probe" in previous[1]:
            seal["probe"] = previous[1]["probe"]
        return seal

    # -- list / verify ----------------------------------------------------------------

    def list(self) -> builtins.list[BackupInfo]:
        """Every backup in the directory, oldest first."""
        found: list[BackupInfo] = []
        if not self.directory.is_dir():
            return found
        for sidecar in self.directory.glob("chroma-*.json"):
            try:
                manifest = json.loads(sidecar.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            path = sidecar.with_name(sidecar.name.removesuffix(".json"))
            try:
                info = BackupInfo(str(manifest["name"]), path, str(manifest["format"]),
                                  float(manifest["created"]), manifest)
            except (KeyError, TypeError, ValueError):
                continue  # not a manifest this release wrote: never restored from
            if path.exists() and info.format in FORMATS:
                found.append(info)
        return sorted(found, key=lambda b: (b.created, b.name))

    def latest(self) -> BackupInfo | None:
        """The newest backup, or ``None``."""
        backups = self.list()
        return backups[-1] if backups else None

    def _pick(self, backup: BackupInfo | str | None) -> BackupInfo:
        if isinstance(backup, BackupInfo):
            return backup
        backups = self.list()
        if not backups:
            raise BackupError(f"No backups of {self.store} in {self.directory}.",
                              path=str(self.directory))
        if backup is None:
            return backups[-1]
        for info in backups:
            if backup in {info.name, str(info.path), info.path.name}:
                return info
        raise BackupError(f"No backup named {backup!r} in {self.directory}. Known: "
                          + ", ".join(b.name for b in backups), path=str(self.directory))

    def verify(self, backup: BackupInfo | str | None = None, *,
               probe: bool = True) -> BackupVerification:
        """Check the signature (with the manager's key), unpack into a scratch directory
        under the limits, compare every checksum and the counts, and open the copy."""
        info = self._pick(backup)
        notes = self._signature_notes(info)
        problem = None if self._key is None else signature_problem(info.manifest, self._key)
        if problem is not None:
            return BackupVerification(info.name, (problem,), False, notes)
        authenticated = self._key is not None
        with _scratch(self.directory) as tmp:
            try:
                root = self._materialize(info, tmp / "store")
            except BackupError as exc:
                return BackupVerification(info.name, (str(exc),), authenticated, notes)
            return BackupVerification(info.name, tuple(self._check(info, root, probe)),
                                      authenticated, notes)

    def _signature_notes(self, info: BackupInfo) -> tuple[str, ...]:
        signature = info.manifest.get("signature")
        if not isinstance(signature, dict):
            return ("the backup is not signed: anyone who can write the backup directory "
                    "could have changed it undetected (create backups with key_file= or "
                    "key_env=)",)
        if self._key is None:
            return (f"the backup is signed with key {signature.get('key_id')}, but no key "
                    "was given, so the signature was not checked",)
        return ()

    def _check(self, info: BackupInfo, root: Path, probe: bool) -> builtins.list[str]:
        """Counts and the chromadb probe of an unpacked copy (its files were verified
        one by one while they were written)."""
        problems: builtins.list[str] = []
        counts = collection_counts(root / SQLITE_NAME)
        if counts != info.counts:
            problems.append(f"counts {counts} differ from the manifest {info.counts}")
        if probe and not problems:
            result = run_probe(root, timeout=self.probe_timeout, n_queries=0)
            if result.status != "ok":
                problems.append(f"chromadb could not read the copy: {result.status} "
                                f"({result.error})")
            else:
                seen = {n: c["rows"] for n, c in result.collections.items()}
                if seen != info.counts:
                    problems.append(f"chromadb returned {seen}, the manifest says "
                                    f"{info.counts}")
        return problems

    def _materialize(self, info: BackupInfo, dest: Path) -> Path:
        """Unpack ``info`` into the new directory ``dest``: limits first, then only the
        verified regular files the manifest names."""
        where = str(info.path)
        unreadable: tuple[type[BaseException], ...] = (
            tarfile.TarError, OSError, EOFError, ValueError, *_zstd_errors())
        if info.encrypted and self._secret is None:
            raise BackupError(f"Backup {info.name} is encrypted. Pass encrypt_to= with the "
                              "key it was made with.", path=where)
        expected = manifest_files(info.manifest, self.limits, where, dest)
        try:
            if info.format == "dir":
                if info.path.is_symlink() or not info.path.is_dir():
                    raise BackupError(f"Backup {where} is not a directory (a link, or "
                                      "missing). Nothing was restored.", path=where)
                inner = unpack(dir_members(info.path), expected, dest, where, MANIFEST)
            else:
                with info.path.open("rb") as raw:
                    source: IO[bytes] = raw if not info.encrypted else \
                        DecryptingReader(raw, self._secret or b"",  # type: ignore[assignment]
                                         where)
                    with self._decompressing(source, info.format) as stream, \
                            tarfile.open(fileobj=stream, mode="r|") as tar:
                        inner = unpack(tar_members(tar), expected, dest, where, MANIFEST)
        except BackupError:
            raise
        except unreadable as exc:
            raise BackupError(f"Backup {where} is unreadable: {exc}", path=where) from exc
        try:
            same = inner is not None and json.loads(inner) == info.manifest
        except ValueError:
            same = False
        if not same:
            raise BackupError(f"Refusing backup {where}: its own manifest is missing or "
                              f"differs from {info.path.name}.json. Nothing was restored.",
                              path=where)
        return dest

    @contextmanager
    def _decompressing(self, raw: IO[bytes], fmt: str) -> Iterator[Any]:
        if fmt == "tar.gz":
            import gzip

            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield gz
        elif fmt == "tar.zst":
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(raw, closefd=False) as zst:
                yield zst
        else:
            yield raw

    # -- restore / prune --------------------------------------------------------------

    def restore(self, backup: BackupInfo | str | None = None, *,
                target: Path | str | None = None, dry_run: bool = False) -> RestoreReport:
        """Restore ``backup`` (default: the newest) into ``target`` (default: the store).

        The copy is unpacked beside the target and verified there first; only then is it
        swapped in, under the target's ``StoreLock``. On any failure the original is left
        as it was (``BackupError``; ``LockTimeout`` when the lock stays busy).
        ``dry_run`` verifies without swapping.
        """
        info = self._pick(backup)
        dest = Path(target) if target is not None else self.store
        dest.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:8]
        staging = dest.parent / f".{dest.name}.restore-{token}"
        try:
            problem = None if self._key is None else signature_problem(info.manifest,
                                                                       self._key)
            if problem is not None:
                raise BackupError(f"Backup {info.name} failed verification; {dest} was not "
                                  f"touched: {problem}.", path=str(info.path))
            self._materialize(info, staging)
            problems = self._check(info, staging, probe=True)
            if problems:
                raise BackupError(f"Backup {info.name} failed verification; {dest} was not "
                                  f"touched: " + "; ".join(problems[:5]), path=str(info.path))
            if not dry_run:
                self._swap(staging, dest, token, info)
        except BackupError as exc:
            emit(CHROMA_RESTORE, str(dest), self.clock, path=str(info.path),
                 mode="dry_run" if dry_run else "restore", outcome="error", error=str(exc))
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        emit(CHROMA_RESTORE, str(dest), self.clock, path=str(info.path),
             mode="dry_run" if dry_run else "restore", outcome="ok")
        return RestoreReport(info.name, str(dest), dry_run, info.counts)

    def _swap(self, staging: Path, dest: Path, token: str, info: BackupInfo) -> None:
        """Swap ``staging`` in for ``dest`` under ``dest``'s lock, whose file moves along."""
        close_store(dest)
        old = dest.parent / f".{dest.name}.pre-restore-{token}"
        lock = self._lock(dest, "a restore") if dest.exists() else None
        with lock if lock is not None else nullcontext():
            moved = lock_moved = False
            try:
                if dest.exists():
                    dest.rename(old)
                    moved = True
                if lock is not None:
                    (staging / SIDE_DIR).mkdir(exist_ok=True)
                    (old / LOCK_NAME).rename(staging / LOCK_NAME)
                    lock_moved = True
                staging.rename(dest)
            except OSError as exc:
                if lock_moved:
                    (staging / LOCK_NAME).rename(old / LOCK_NAME)
                if moved and not dest.exists():
                    old.rename(dest)
                raise BackupError(f"Could not swap the restored copy into {dest}: {exc}; "
                                  "the original is in place.", path=str(dest)) from exc
            write_seal(dest, {"version": 1, "created": self.clock.time(),
                              "restored": info.name,
                              "chroma_version": info.manifest.get("chroma_version"),
                              "files": info.manifest["files"], "counts": info.counts})
        shutil.rmtree(old, ignore_errors=True)

    def prune(self, *, keep: int | None = None, max_age: float | None = None,
              dry_run: bool = False) -> builtins.list[BackupInfo]:
        """Remove backups beyond the newest ``keep`` or older than ``max_age`` seconds.

        The newest backup is never removed. Returns what was (or would be) removed.
        """
        keep = self.keep if keep is None else keep
        max_age = self.max_age if max_age is None else max_age
        now = self.clock.time()
        newest_first = list(reversed(self.list()))
        doomed = [b for i, b in enumerate(newest_first) if i > 0 and (
            (keep is not None and i >= keep)
            or (max_age is not None and now - b.created > max_age))]
        if not dry_run:
            for info in doomed:
                if info.path.is_dir():
                    shutil.rmtree(info.path)
                else:
                    info.path.unlink(missing_ok=True)
                info.path.with_name(info.path.name + ".json").unlink(missing_ok=True)
        return doomed

    # -- async --------------------------------------------------------------------------

    async def acreate(self, *, format: str | None = None) -> BackupInfo:
        """``create`` in a worker thread."""
        return await asyncio.to_thread(self.create, format=format)

    async def averify(self, backup: BackupInfo | str | None = None, *,
                      probe: bool = True) -> BackupVerification:
        """``verify`` in a worker thread."""
        return await asyncio.to_thread(self.verify, backup, probe=probe)

    async def arestore(self, backup: BackupInfo | str | None = None, *,
                       target: Path | str | None = None,
                       dry_run: bool = False) -> RestoreReport:
        """``restore`` in a worker thread."""
        return await asyncio.to_thread(self.restore, backup, target=target, dry_run=dry_run)


def _fsync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every directory, deepest first."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            if not os.path.islink(os.path.join(dirpath, name)):
                fsync_path(Path(dirpath, name))
        fsync_path(Path(dirpath))


def _secret(encrypt_to: object) -> bytes | None:
    if encrypt_to is None:
        return None
    if not isinstance(encrypt_to, bytes | str):
        raise TypeError(f"encrypt_to={_validate.show(type(encrypt_to))} is not a key. Pass "
                        "the key as bytes or a passphrase string (read it from a file or "
                        "an environment variable, not from source code).")
    secret = encrypt_to.encode() if isinstance(encrypt_to, str) else encrypt_to
    if len(secret) < MIN_KEY_BYTES:
        raise ValueError(f"encrypt_to holds {len(secret)} bytes. Pass a key or passphrase "
                         f"of at least {MIN_KEY_BYTES} bytes.")
    if not aead_available():
        raise ValueError("encrypt_to= needs the cryptography package. Install "
                         "pytest-resilience[crypto].")
    return secret


def _only_regular_files(root: Path) -> None:
    """Refuse a store holding links or special files: backups copy regular files only."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            mode = (Path(dirpath) / name).lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise BackupError(f"{Path(dirpath) / name} is a link or special file; a "
                                  "backup holds regular files only. Replace it with the "
                                  "file it stands for.", path=str(root))


def _zstd_errors() -> tuple[type[BaseException], ...]:
    try:
        import zstandard
    except ImportError:
        return ()
    return (zstandard.ZstdError,)



@contextmanager
def _scratch(near: Path) -> Iterator[Path]:
    near.mkdir(parents=True, exist_ok=True)
    path = near / f".verify-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
