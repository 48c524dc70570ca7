"""Unpacking a backup: one check for directories and archives, driven by the manifest.

Before a byte is written the manifest is checked against the limits (total bytes, file
count, size of each file, free disk space) and for paths that could escape or land in
our sidecar (``.resilience/``: journals and identities never come from a backup). Then
each member must be a regular file the manifest names, once, with the size it declares;
it is written as a new file (never following a link) while its SHA-256 is computed, and
a mismatch aborts. Links, hardlinks, devices, FIFOs and sparse members are refused, in
every format, so none can survive a restore.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from pytest_resilience._errors import BackupError
from pytest_resilience.chroma._files import SIDE_DIR

__all__ = ["Limits", "Member", "dir_members", "manifest_files", "tar_members", "unpack"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COPY = 1 << 20
MAX_MANIFEST_BYTES = 16 << 20


@dataclass(frozen=True)
class Limits:
    """What a restore may write: at most ``max_bytes`` in ``max_files`` files, each at
    most ``max_file_bytes``."""

    max_bytes: int
    max_files: int
    max_file_bytes: int


@dataclass
class Member:
    """One entry of a backup: its name, what it is, its size and how to read it."""

    name: str
    kind: str  # "file", "dir", or a description of what else it is
    size: int
    open: Callable[[], IO[bytes]]


def _refuse(where: str, message: str) -> BackupError:
    return BackupError(f"Refusing backup {where}: {message}. Nothing was restored.",
                       path=where)


def _clean(name: str) -> str | None:
    """``name`` when it is a plain relative POSIX path inside the backup, else ``None``."""
    if not name or "\x00" in name or "\\" in name:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or any(p in ("", ".", "..") for p in name.split("/")):
        return None
    return path.as_posix()


def manifest_files(manifest: dict[str, Any], limits: Limits, where: str,
                   dest: Path) -> dict[str, tuple[int, str]]:
    """``{path: (size, sha256)}`` from the manifest, after every limit has been checked."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise _refuse(where, "its manifest lists no files")
    if len(files) > limits.max_files:
        raise _refuse(where, f"its manifest lists {len(files)} files, more than "
                      f"max_files={limits.max_files}")
    out: dict[str, tuple[int, str]] = {}
    for name, meta in files.items():
        clean = _clean(name) if isinstance(name, str) else None
        if clean is None or clean != name:
            raise _refuse(where, f"its manifest names the path {name!r}, which would escape "
                          "the restore directory")
        if clean == SIDE_DIR or clean.startswith(SIDE_DIR + "/"):
            raise _refuse(where, f"its manifest names {name!r}: {SIDE_DIR}/ (journals, "
                          "locks, seals, the store's identity) is never restored from a "
                          "backup")
        size = meta.get("size") if isinstance(meta, dict) else None
        digest = meta.get("sha256") if isinstance(meta, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or \
                not isinstance(digest, str) or not _SHA256.match(digest):
            raise _refuse(where, f"its manifest entry for {name!r} has no valid size and "
                          "SHA-256")
        if size > limits.max_file_bytes:
            raise _refuse(where, f"{name!r} is {size} bytes, more than "
                          f"max_file_bytes={limits.max_file_bytes}")
        out[clean] = (size, digest)
    total = sum(size for size, _ in out.values())
    if total > limits.max_bytes:
        raise _refuse(where, f"it holds {total} bytes, more than max_bytes={limits.max_bytes}")
    free = shutil.disk_usage(dest if dest.exists() else dest.parent).free
    if total > free:
        raise _refuse(where, f"it needs {total} bytes and {dest.parent} has {free} free")
    return out


def dir_members(root: Path) -> Iterator[Member]:
    """The entries of a ``dir`` backup, without following links."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = base / name
            info = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISDIR(info.st_mode):
                yield Member(rel, "dir", 0, _no_open)
            elif not stat.S_ISREG(info.st_mode):
                yield Member(rel, _describe_mode(info.st_mode), 0, _no_open)
            elif info.st_nlink > 1:
                yield Member(rel, f"a hardlink ({info.st_nlink} names)", 0, _no_open)
            else:
                yield Member(rel, "file", info.st_size, _opener(path))


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    def open_() -> IO[bytes]:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        return os.fdopen(fd, "rb")

    return open_


def _no_open() -> IO[bytes]:
    raise AssertionError("only regular files are opened")


def _describe_mode(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def tar_members(tar: tarfile.TarFile) -> Iterator[Member]:
    """The members of an archive opened for streaming (``r|``)."""
    for info in tar:
        if info.isfile() and not info.issparse():
            yield Member(info.name, "file", info.size, _tar_opener(tar, info))
        elif info.isdir():
            yield Member(info.name, "dir", 0, _no_open)
        else:
            kind = ("a symlink" if info.issym() else "a hardlink" if info.islnk()
                    else "a FIFO" if info.isfifo() else "a device" if info.isdev()
                    else "a sparse file" if info.issparse() else "a special member")
            yield Member(info.name, kind, 0, _no_open)


def _tar_opener(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_() -> IO[bytes]:
        stream = tar.extractfile(info)
        assert stream is not None  # a regular file always has a stream
        return stream

    return open_


def unpack(members: Iterator[Member], expected: dict[str, tuple[int, str]], dest: Path,
           where: str, manifest_name: str) -> bytes | None:
    """Write the verified members into the new directory ``dest``; returns the bytes of
    the backup's own copy of the manifest (read, never written)."""
    dest.mkdir(parents=True)
    seen: set[str] = set()
    inner: bytes | None = None
    for member in members:
        name = _clean(member.name)
        if name is None:
            raise _refuse(where, f"member {member.name!r} would escape the restore directory")
        if member.kind == "dir":
            continue  # directories are made for the files the manifest names
        if member.kind != "file":
            raise _refuse(where, f"member {name!r} is {member.kind}; links and special "
                          "files are never restored")
        if name == manifest_name:
            if member.size > MAX_MANIFEST_BYTES or inner is not None:
                raise _refuse(where, "its manifest member is repeated or too large")
            with member.open() as fh:
                inner = fh.read(MAX_MANIFEST_BYTES + 1)
            continue
        if name not in expected:
            raise _refuse(where, f"member {name!r} is not in the manifest")
        if name in seen:
            raise _refuse(where, f"member {name!r} appears twice")
        size, digest = expected[name]
        if member.size != size:
            raise _refuse(where, f"member {name!r} is {member.size} bytes, the manifest says "
                          f"{size}")
        seen.add(name)
        _write(member, dest / name, size, digest, where)
    missing = sorted(set(expected) - seen)
    if missing:
        raise _refuse(where, f"{len(missing)} files of the manifest are missing from it "
                      f"({', '.join(missing[:3])})")
    return inner


def _write(member: Member, target: Path, size: int, digest: str, where: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out, member.open() as source:
        while chunk := source.read(min(_COPY, size - written + 1)):
            written += len(chunk)
            if written > size:
                raise _refuse(where, f"member {member.name!r} holds more bytes than the "
                              f"manifest's {size}")
            hasher.update(chunk)
            out.write(chunk)
    if written != size or hasher.hexdigest() != digest:
        raise _refuse(where, f"member {member.name!r} does not match the SHA-256 in the "
                      "manifest")
