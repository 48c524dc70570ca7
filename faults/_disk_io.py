"""The Python I/O layer the disk faults sit in: one shared patch of ``open`` and ``os``.

While at least one listener is attached, ``builtins.open`` / ``io.open`` (so
``Path.open``, ``write_text``, ``tempfile``, ``os.fdopen``), ``os.open``, ``os.write``,
``os.pwrite``, ``os.writev``, ``os.ftruncate``, ``os.truncate``, ``os.fsync``,
``os.fdatasync``, ``os.sync``, ``os.rename``, ``os.replace``, ``os.unlink``,
``os.remove``, ``os.mkdir``, ``os.rmdir``, ``os.close``, ``os.sendfile`` and
``os.copy_file_range`` are wrapped. A call on a path under no listener's root goes
straight to the original. Files opened with ``open`` under a root are built on a
``FileIO`` subclass, so their buffered writes reach the listeners too.

What this layer cannot see: writes made by C code (SQLite, chromadb's HNSW files,
``mmap``), by other processes, or through a file descriptor opened before the layer was
installed or outside a root. Paths are matched by their absolute spelling and then
resolved, so a symlink under a root that points outside it is never touched.
"""

from __future__ import annotations

import builtins
import io
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_resilience.patching import Patch, patch

__all__ = ["REAL", "DiskListener", "DiskOp", "attach", "detach", "within"]

#: The original functions, for the listeners' own I/O.
REAL: dict[str, Any] = {
    "io.open": builtins.open,
    **{name: getattr(os, name) for name in (
        "open", "close", "write", "pwrite", "writev", "ftruncate", "truncate", "fsync",
        "fdatasync", "sync", "rename", "replace", "unlink", "remove", "mkdir", "rmdir",
        "sendfile", "copy_file_range", "lseek", "fstat", "read", "pread", "readlink",
    ) if hasattr(os, name)},
}


@dataclass
class DiskOp:
    """One operation on a path under a root, as listeners see it.

    ``name``: ``open``, ``write``, ``truncate``, ``fsync``, ``rename``, ``unlink``,
    ``rmdir``, ``mkdir``, ``close`` or ``sync``. ``path`` is absolute (for an fd, the path
    it was opened by); ``target`` is a rename's destination. A write's listeners see the
    request ``size`` before it runs and ``offset``/``data`` after.
    """

    name: str
    path: str | None = None
    fd: int | None = None
    target: str | None = None
    size: int = 0
    offset: int = 0
    data: bytes = b""
    writable: bool = False
    created: bool = False
    truncated: bool = False
    is_dir: bool = False


class DiskListener(Protocol):
    """A disk fault or recorder: told about operations under its ``root``."""

    root: str

    def before(self, op: DiskOp) -> int | None:
        """Called before ``op`` runs: may raise ``OSError`` or wait; for a write, may
        return how many of ``op.size`` bytes to write (a short write)."""
        ...

    def after(self, op: DiskOp) -> None:
        """Called after ``op`` ran."""
        ...


@dataclass
class _Fd:
    path: str
    dev: int
    ino: int
    is_dir: bool
    sync: bool


@dataclass
class _Layer:
    lock: threading.RLock = field(default_factory=threading.RLock)
    listeners: tuple[DiskListener, ...] = ()
    fds: dict[int, _Fd] = field(default_factory=dict)
    patches: list[Patch] = field(default_factory=list)


_LAYER = _Layer()


def attach(listener: DiskListener) -> None:
    """Start telling ``listener`` about operations under its root (installs the patch)."""
    with _LAYER.lock:
        if not _LAYER.listeners:
            _install()
        _LAYER.listeners = (*_LAYER.listeners, listener)


def detach(listener: DiskListener) -> None:
    """Stop telling ``listener``; the last one restores the originals."""
    with _LAYER.lock:
        if listener not in _LAYER.listeners:
            return
        _LAYER.listeners = tuple(x for x in _LAYER.listeners if x is not listener)
        if not _LAYER.listeners:
            _uninstall()
            _LAYER.fds.clear()


def within(path: str, root: str) -> bool:
    """Whether absolute ``path`` is ``root`` or below it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _covered(path: str) -> bool:
    return any(within(path, x.root) for x in _LAYER.listeners)


def _absolute(path: Any, dir_fd: int | None = None) -> str:
    text = os.fsdecode(os.fspath(path))
    if dir_fd is not None and not os.path.isabs(text):
        text = os.path.join(REAL["readlink"](f"/proc/self/fd/{dir_fd}"), text)
    return os.path.abspath(text)


def _entry(path: Any, dir_fd: int | None = None) -> str | None:
    """The resolved path of a directory entry (its parent resolved, not the entry itself)
    when it lies under a root, else ``None``."""
    if not _LAYER.listeners or isinstance(path, int):
        return None
    absolute = _absolute(path, dir_fd)
    if not _covered(absolute):
        return None
    parent, name = os.path.split(absolute)
    resolved = os.path.join(os.path.realpath(parent), name) if name else absolute
    return resolved if _covered(resolved) else None


def _target(path: Any, dir_fd: int | None = None) -> str | None:
    """The fully resolved path a call opens when it lies under a root, else ``None``."""
    if not _LAYER.listeners or isinstance(path, int):
        return None
    absolute = _absolute(path, dir_fd)
    if not _covered(absolute):
        return None
    resolved = os.path.realpath(absolute)
    return resolved if _covered(resolved) else None


def _fd_info(fd: Any) -> _Fd | None:
    """The tracked file behind ``fd`` (an int or an object with ``fileno``), if still the
    same file."""
    if not _LAYER.fds:
        return None
    if not isinstance(fd, int):
        fileno = getattr(fd, "fileno", None)
        if fileno is None:
            return None
        fd = fileno()
    info = _LAYER.fds.get(fd)
    if info is None:
        return None
    try:
        st = REAL["fstat"](fd)
    except OSError:
        _LAYER.fds.pop(fd, None)
        return None
    if (st.st_dev, st.st_ino) != (info.dev, info.ino):
        _LAYER.fds.pop(fd, None)  # closed behind our back and reused
        return None
    return info


def _listeners(*paths: str | None) -> list[DiskListener]:
    return [x for x in _LAYER.listeners if any(p is not None and within(p, x.root)
                                                 for p in paths)]


def _before(op: DiskOp) -> int | None:
    allowed: int | None = None
    for listener in _listeners(op.path, op.target):
        limit = listener.before(op)
        if limit is not None:
            allowed = limit if allowed is None else min(allowed, limit)
    return allowed


def _after(op: DiskOp) -> None:
    for listener in _listeners(op.path, op.target):
        listener.after(op)


def _register(fd: int, path: str, *, writable: bool, created: bool, truncated: bool,
              sync: bool) -> None:
    st = REAL["fstat"](fd)
    is_dir = stat.S_ISDIR(st.st_mode)
    with _LAYER.lock:
        _LAYER.fds[fd] = _Fd(path, st.st_dev, st.st_ino, is_dir, sync)
    _after(DiskOp("open", path, fd, writable=writable, created=created, truncated=truncated,
                  is_dir=is_dir))


def _forget(fd: int) -> None:
    info = _LAYER.fds.pop(fd, None)
    if info is not None:
        _after(DiskOp("close", info.path, fd, is_dir=info.is_dir))


def _write(fd: int, data: Any, do_write: Callable[[Any], int | None],
           offset: int | None = None) -> int | None:
    """Run one write through the listeners: before (may raise or shorten), the write,
    after (with the bytes that landed and where)."""
    info = _fd_info(fd)
    if info is None:
        return do_write(data)
    view = memoryview(data).cast("B")
    allowed = _before(DiskOp("write", info.path, fd, size=view.nbytes))
    chunk = view if allowed is None or allowed >= view.nbytes else view[:max(0, allowed)]
    written = do_write(chunk)
    if written is None:
        return None
    at = offset if offset is not None else REAL["lseek"](fd, 0, os.SEEK_CUR) - written
    _after(DiskOp("write", info.path, fd, size=written, offset=at, data=bytes(view[:written])))
    if info.sync:  # O_SYNC / O_DSYNC: every write is durable when it returns
        _after(DiskOp("fsync", info.path, fd, is_dir=False))
    return written


def _truncate(fd: int | None, path: str, size: int, do: Callable[[], Any]) -> Any:
    op = DiskOp("truncate", path, fd, size=size)
    _before(op)
    result = do()
    _after(op)
    return result


class _TrackedFileIO(io.FileIO):
    """``FileIO`` whose writes, truncates and close go through the listeners."""

    def __init__(self, file: Any, mode: str, closefd: bool, opener: Any, path: str) -> None:
        existed = isinstance(file, int) or os.path.lexists(path)
        writable = any(c in mode for c in "wax+")
        if writable and not isinstance(file, int):
            _before(DiskOp("open", path, writable=True, created=not existed))
        super().__init__(file, mode, closefd, opener=opener)
        self._resilience_path = path
        _register(self.fileno(), path, writable=writable,
                  created=not existed and writable,
                  truncated=existed and "w" in mode and not isinstance(file, int), sync=False)

    def write(self, b: Any) -> int | None:  # type: ignore[override]
        return _write(self.fileno(), b, lambda chunk: io.FileIO.write(self, chunk))

    def truncate(self, size: int | None = None) -> int:
        target = self.tell() if size is None else size
        result: int = _truncate(self.fileno(), self._resilience_path, target,
                                lambda: io.FileIO.truncate(self, target))
        return result

    def close(self) -> None:
        if not self.closed and self.closefd:
            _forget(self.fileno())
        super().close()


def _open_tracked(file: Any, path: str, mode: str, buffering: int,  # noqa: PLR0917
                  encoding: str | None, errors: str | None, newline: str | None,
                  closefd: bool, opener: Any) -> Any:
    """``io.open`` over a ``_TrackedFileIO`` (the logic of ``_pyio.open``)."""
    if not isinstance(mode, str):
        raise TypeError(f"invalid mode: {mode!r}")
    modes = set(mode)
    if modes - set("axrwb+t") or len(mode) > len(modes) or ("t" in modes and "b" in modes) \
            or sum(c in modes for c in "xrwa") != 1:
        return REAL["io.open"](file, mode, buffering, encoding, errors, newline, closefd,
                               opener)  # let the real open raise its own error
    binary = "b" in modes
    if binary and (encoding is not None or errors is not None or newline is not None):
        return REAL["io.open"](file, mode, buffering, encoding, errors, newline, closefd,
                               opener)
    raw = _TrackedFileIO(file, "".join(c for c in mode if c in "xrwa+"), closefd, opener,
                         path)
    result: Any = raw
    try:
        line_buffering = False
        if buffering == 1 or (buffering < 0 and raw.isatty()):
            buffering, line_buffering = -1, True
        if buffering < 0:
            size = REAL["fstat"](raw.fileno()).st_blksize
            buffering = size if size > 1 else io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if binary:
                return raw
            raise ValueError("can't have unbuffered text I/O")
        if "+" in modes:
            result = io.BufferedRandom(raw, buffering)
        elif modes & set("xwa"):
            result = io.BufferedWriter(raw, buffering)
        else:
            result = io.BufferedReader(raw, buffering)
        if binary:
            return result
        text = io.TextIOWrapper(result, io.text_encoding(encoding), errors, newline,
                                line_buffering)
        result = text
        text.mode = mode  # type: ignore[misc]
        return text
    except BaseException:
        result.close()
        raise


def _install() -> None:  # noqa: PLR0915 - one wrapper per patched function
    real = REAL

    def open_(file: Any, mode: str = "r", buffering: int = -1,  # noqa: PLR0917 - open()'s
              encoding: str | None = None,
              errors: str | None = None, newline: str | None = None, closefd: bool = True,
              opener: Any = None) -> Any:
        if isinstance(file, int):
            info = _fd_info(file)
            path = info.path if info is not None else None
        else:
            path = _target(file)
        if path is None:
            return real["io.open"](file, mode, buffering, encoding, errors, newline, closefd,
                                   opener)
        return _open_tracked(file, path, mode, buffering, encoding, errors, newline, closefd,
                             opener)

    def os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        target = _target(path, dir_fd)
        if target is None:
            return int(real["open"](path, flags, mode, dir_fd=dir_fd))
        writable = bool(flags & (os.O_WRONLY | os.O_RDWR))
        existed = os.path.lexists(target)
        if writable or flags & os.O_CREAT:
            _before(DiskOp("open", target, writable=True, created=not existed))
        fd = int(real["open"](path, flags, mode, dir_fd=dir_fd))
        try:
            _register(fd, target, writable=writable,
                      created=not existed and bool(flags & os.O_CREAT),
                      truncated=existed and writable and bool(flags & os.O_TRUNC),
                      sync=bool(flags & (os.O_SYNC | getattr(os, "O_DSYNC", 0))))
        except BaseException:
            real["close"](fd)
            raise
        return fd

    def close(fd: int) -> None:
        if fd in _LAYER.fds:
            _forget(fd)
        real["close"](fd)

    def write(fd: int, data: Any) -> int:
        return int(_write(fd, data, lambda chunk: real["write"](fd, chunk)) or 0)

    def pwrite(fd: int, data: Any, offset: int) -> int:
        return int(_write(fd, data, lambda chunk: real["pwrite"](fd, chunk, offset),
                          offset) or 0)

    def writev(fd: int, buffers: Any) -> int:
        if _fd_info(fd) is None:
            return int(real["writev"](fd, buffers))
        return write(fd, b"".join(bytes(b) for b in buffers))

    def ftruncate(fd: int, length: int) -> None:
        info = _fd_info(fd)
        if info is None:
            real["ftruncate"](fd, length)
            return
        _truncate(fd, info.path, length, lambda: real["ftruncate"](fd, length))

    def truncate(path: Any, length: int) -> None:
        if isinstance(path, int):
            ftruncate(path, length)
            return
        target = _target(path)
        if target is None:
            real["truncate"](path, length)
            return
        _truncate(None, target, length, lambda: real["truncate"](path, length))

    def persist(name: str) -> Callable[[Any], None]:
        def fsync(fd: Any) -> None:
            info = _fd_info(fd)
            if info is None:
                real[name](fd)
                return
            number = fd if isinstance(fd, int) else fd.fileno()
            op = DiskOp("fsync", info.path, number, is_dir=info.is_dir)
            _before(op)
            real[name](fd)
            _after(op)

        return fsync

    def sync() -> None:
        real["sync"]()
        for listener in _LAYER.listeners:
            listener.after(DiskOp("sync"))

    def moving(name: str) -> Callable[..., None]:
        def rename(src: Any, dst: Any, *, src_dir_fd: int | None = None,
                   dst_dir_fd: int | None = None) -> None:
            source, target = _entry(src, src_dir_fd), _entry(dst, dst_dir_fd)
            if source is None and target is None:
                real[name](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
                return
            op = DiskOp("rename", source, target=target)
            _before(op)
            real[name](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
            _after(op)

        return rename

    def removing(name: str, op_name: str) -> Callable[..., None]:
        def remove(path: Any, *, dir_fd: int | None = None) -> None:
            entry = _entry(path, dir_fd)
            if entry is None:
                real[name](path, dir_fd=dir_fd)
                return
            op = DiskOp(op_name, entry)
            _before(op)
            real[name](path, dir_fd=dir_fd)
            _after(op)

        return remove

    def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        entry = _entry(path, dir_fd)
        if entry is None:
            real["mkdir"](path, mode, dir_fd=dir_fd)
            return
        op = DiskOp("mkdir", entry, is_dir=True)
        _before(op)
        real["mkdir"](path, mode, dir_fd=dir_fd)
        _after(op)

    def sendfile(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        if _fd_info(out_fd) is None:
            return int(real["sendfile"](out_fd, in_fd, offset, count))
        data = real["read"](in_fd, count) if offset is None else \
            real["pread"](in_fd, count, offset)
        return write(out_fd, data)

    def copy_file_range(src: int, dst: int, count: int, offset_src: int | None = None,
                        offset_dst: int | None = None) -> int:
        if _fd_info(dst) is None:
            return int(real["copy_file_range"](src, dst, count, offset_src, offset_dst))
        data = real["read"](src, count) if offset_src is None else \
            real["pread"](src, count, offset_src)
        return write(dst, data) if offset_dst is None else pwrite(dst, data, offset_dst)

    patched: dict[str, Any] = {
        "open": os_open, "close": close, "write": write, "pwrite": pwrite,
        "writev": writev, "ftruncate": ftruncate, "truncate": truncate,
        "fsync": persist("fsync"), "fdatasync": persist("fdatasync"), "sync": sync,
        "rename": moving("rename"), "replace": moving("replace"),
        "unlink": removing("unlink", "unlink"), "remove": removing("remove", "unlink"),
        "rmdir": removing("rmdir", "rmdir"), "mkdir": mkdir, "sendfile": sendfile,
        "copy_file_range": copy_file_range,
    }
    targets = [(os, name, fn) for name, fn in patched.items() if name in real]
    targets += [(builtins, "open", open_), (io, "open", open_)]
    try:
        for owner, name, fn in targets:
            _LAYER.patches.append(patch(owner, name, fn))
    except BaseException:
        _uninstall()
        raise


def _uninstall() -> None:
    while _LAYER.patches:
        _LAYER.patches.pop().restore()
