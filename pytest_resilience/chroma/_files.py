"""Facts about a Chroma persistent store read from its files, without importing chromadb."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_resilience.chroma._sqlite_seal import sqlite_seal

__all__ = [
    "SIDE_DIR",
    "SQLITE_NAME",
    "checksum_files",
    "chroma_version",
    "close_store",
    "collection_counts",
    "copy_store",
    "fsync_path",
    "sha256_file",
    "store_files",
    "vector_segments",
]

#: Our sidecar directory inside a store (seals, journals); chroma ignores it.
SIDE_DIR = ".resilience"
#: The file name of a store's SQLite database, directly under the store directory.
SQLITE_NAME = "chroma.sqlite3"
_CHUNK = 1 << 20


def chroma_version() -> str:
    """The installed chromadb version, or ``"unknown"`` (no import of chromadb)."""
    try:
        return metadata.version("chromadb")
    except metadata.PackageNotFoundError:
        return "unknown"


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (which makes the names created or removed in it
    durable: POSIX needs both for a file to survive a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def store_files(root: Path) -> list[Path]:
    """Every regular file of the store, relative to ``root``, sorted; the sidecar excluded."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d != SIDE_DIR]
        found.extend(rel_dir / name for name in filenames)
    return sorted(found)


def checksum_files(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative posix path: {"size": bytes, "sha256": hex}}`` for every store file.

    ``chroma.sqlite3`` also gets ``"content"`` and ``"volatile"`` (``sqlite_seal``): a
    digest without exactly the bytes chroma rewrites on every open, and the pages it
    appends to, kept whole.
    """
    found: dict[str, dict[str, Any]] = {}
    for rel in store_files(root):
        path = root / rel
        found[rel.as_posix()] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
        if rel.as_posix() == SQLITE_NAME:
            found[SQLITE_NAME].update(sqlite_seal(path))
    return found


def collection_counts(sqlite_path: Path) -> dict[str, int]:
    """Records per collection name, read from the METADATA segment rows in SQLite."""
    with _ro(sqlite_path) as conn:
        rows = conn.execute(
            "SELECT c.name, COUNT(e.id) FROM collections c "
            "JOIN segments s ON s.collection = c.id AND s.scope = 'METADATA' "
            "LEFT JOIN embeddings e ON e.segment_id = s.id GROUP BY c.name"
        ).fetchall()
    return {str(name): int(n) for name, n in rows}


def vector_segments(sqlite_path: Path) -> dict[str, str]:
    """``{vector segment id (its directory name): collection name}`` of the closed store
    whose database is ``sqlite_path`` (``store / SQLITE_NAME``), read-only."""
    with _ro(sqlite_path) as conn:
        rows = conn.execute(
            "SELECT s.id, c.name FROM segments s JOIN collections c ON s.collection = c.id "
            "WHERE s.scope = 'VECTOR'"
        ).fetchall()
    return {str(seg): str(name) for seg, name in rows}


class _ro:
    """A read-only SQLite connection that is always closed (context manager)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise sqlite3.DatabaseError(f"{path} does not exist")
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def copy_store(src: Path, dst: Path, *, online: bool = False, include_side: bool = False) -> None:
    """Copy a store into ``dst`` (which must not exist), the sidecar only when asked.

    ``online=True`` copies SQLite through its online backup API (consistent while the
    store is open); otherwise every file is copied byte for byte, damage included.
    """
    dst.mkdir(parents=True)
    sqlite_src = src / SQLITE_NAME
    if online and sqlite_src.is_file() and sqlite_src.stat().st_size > 0:
        source = sqlite3.connect(sqlite_src)
        target = sqlite3.connect(dst / SQLITE_NAME)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
    elif sqlite_src.is_file():
        shutil.copy2(sqlite_src, dst / SQLITE_NAME)
    for entry in sorted(src.iterdir()):
        if online and entry.name in {SQLITE_NAME, f"{SQLITE_NAME}-journal"}:
            continue
        if entry.name == SQLITE_NAME:
            continue
        if entry.name == SIDE_DIR and not include_side:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, dst / entry.name, symlinks=True)
        elif entry.is_file():
            shutil.copy2(entry, dst / entry.name)


def close_store(path: Path | str) -> None:
    """Forget chroma's cached clients so the next ``PersistentClient`` rereads the files.

    A no-op when chromadb was never imported.
    """
    module = sys.modules.get("chromadb.api.shared_system_client")
    if module is None:
        return
    module.SharedSystemClient.clear_system_cache()
