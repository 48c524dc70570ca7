"""The crash model: a directory's page cache and what of it is durable (LazyFS-style).

Every file has the bytes the workload wrote (its page cache) and the bytes as of its last
``fsync`` (what a power cut keeps); every directory has its entries and its entries as of
its last ``fsync`` (creates, renames and unlinks are durable only then). A ``Recorder``
keeps this model of one root up to date from the Python I/O layer and takes crash
points: the states a crash at that moment may leave (see ``faults._crash``).
"""

from __future__ import annotations

import itertools
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from faults._disk_io import REAL, DiskOp, within
from pytest_resilience import ResilienceError, validate

__all__ = ["ExplorerError", "Opaque", "Point", "Recorder", "Tree", "read_tree"]

Opaque = Literal["error", "durable"]
Tree = dict[str, bytes | None]  # posix path relative to the root -> bytes, None for a dir


class ExplorerError(ResilienceError):
    """The crash model cannot be trusted (files changed outside the Python I/O layer), or
    the explored workload itself failed; ``paths`` names the files concerned."""

    def __init__(self, message: str, *, paths: tuple[str, ...] = ()) -> None:
        super().__init__(message, context={"paths": paths})
        self.paths = paths


class _File:
    __slots__ = ("data", "durable", "pending")

    def __init__(self, data: bytes = b"", durable: bytes = b"") -> None:
        self.data = bytearray(data)
        self.durable = durable
        self.pending: list[tuple[int, bytes] | int] = []  # writes (offset, data), truncates


class _Dir:
    __slots__ = ("durable", "entries")

    def __init__(self, entries: dict[str, int] | None = None) -> None:
        self.entries: dict[str, int] = dict(entries or {})
        self.durable: dict[str, int] = dict(self.entries)


def _apply(data: bytearray, op: tuple[int, bytes] | int, cut: int | None = None) -> None:
    if isinstance(op, int):
        del data[op:]
        data.extend(bytes(max(0, op - len(data))))
        return
    offset, chunk = op
    if cut is not None:
        chunk = chunk[:cut]
    if offset > len(data):
        data.extend(bytes(offset - len(data)))
    data[offset:offset + len(chunk)] = chunk


def _torn(node: _File) -> bytes | None:
    """The file with its unsynced writes applied and the last one cut in half."""
    last = max((i for i, op in enumerate(node.pending) if not isinstance(op, int)),
               default=None)
    if last is None:
        return None
    write = node.pending[last]
    assert not isinstance(write, int)
    if len(write[1]) < 2:
        return None
    data = bytearray(node.durable)
    for op in node.pending[:last]:
        _apply(data, op)
    _apply(data, write, len(write[1]) // 2)
    return bytes(data)


def _torn_content(target: int, cut: bytes) -> Callable[[int, _File], bytes]:
    """File contents for a torn state: ``cut`` for ``target``, durable bytes elsewhere."""
    return lambda nid, node: cut if nid == target else node.durable


@dataclass
class Point:
    """One crash point: the states it may leave and what was known there."""

    point: int
    before: str
    acked: tuple[Any, ...]
    observed: Any
    states: list[tuple[str, bool, Tree]]  # (variant, durable directory entries?, files)


def read_tree(root: Path) -> Tree:
    """Every directory and regular file under ``root`` (symlinks and others skipped),
    read with the original functions."""
    tree: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        for name in dirnames:
            if not os.path.islink(os.path.join(dirpath, name)):
                tree[(rel / name).as_posix()] = None
        for name in filenames:
            full = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(full).st_mode):
                with REAL["io.open"](full, "rb") as fh:
                    tree[(rel / name).as_posix()] = fh.read()
    return tree


def check_opaque(opaque: object) -> Opaque:
    """``opaque`` when it is ``'error'`` or ``'durable'``."""
    if opaque not in ("error", "durable") or not isinstance(opaque, str):
        raise (ValueError if isinstance(opaque, str) else TypeError)(
            f"opaque={validate.show(opaque)} is not a policy. Pass 'error' (refuse files "
            "changed outside the Python I/O layer) or 'durable' (take their content at each "
            "crash point as durable).")
    return opaque


class Recorder:
    """A ``DiskListener`` that models the root's page cache and durable state."""

    def __init__(self, root: Path, *, torn: bool, opaque: Opaque,
                 observe: Callable[[], Any] | None) -> None:
        check_opaque(opaque)
        validate.callable_or_none(observe, "observe", accepted="a function of no arguments")
        self.path = root
        self.root = str(root)
        self.torn = torn
        self.opaque = opaque
        self.observe = observe
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.nodes: dict[int, _File | _Dir] = {0: _Dir()}
        self.fds: dict[int, int] = {}
        self.acks: list[Any] = []
        self.points: list[Point] = []
        self.unseen: set[str] = set()
        self.last_written: int | None = None
        self._load(read_tree(root), durable=True)

    # -- namespace ---------------------------------------------------------------------
    def _parts(self, path: str) -> tuple[str, ...]:
        return Path(os.path.relpath(path, self.root)).parts if path != self.root else ()

    def _lookup(self, parts: tuple[str, ...]) -> int | None:
        nid = 0
        for name in parts:
            node = self.nodes[nid]
            if not isinstance(node, _Dir) or name not in node.entries:
                return None
            nid = node.entries[name]
        return nid

    def _parent(self, parts: tuple[str, ...]) -> _Dir | None:
        nid = self._lookup(parts[:-1])
        node = self.nodes.get(nid) if nid is not None else None
        return node if isinstance(node, _Dir) else None

    def _new(self, parts: tuple[str, ...], node: _File | _Dir, *, durable: bool) -> int:
        for i in range(1, len(parts)):  # parents the model has not seen: made outside it
            if self._lookup(parts[:i]) is None:
                self._new(parts[:i], _Dir(), durable=durable)
        nid = next(self.ids)
        self.nodes[nid] = node
        parent = self._parent(parts)
        assert parent is not None
        parent.entries[parts[-1]] = nid
        if durable:
            parent.durable[parts[-1]] = nid
        return nid

    def _load(self, tree: Tree, *, durable: bool) -> None:
        """Make the model's current state ``tree`` for the paths in it (durable too when
        ``durable``)."""
        for rel in sorted(tree, key=lambda p: p.count("/")):
            parts = tuple(rel.split("/"))
            content = tree[rel]
            nid = self._lookup(parts)
            node = self.nodes.get(nid) if nid is not None else None
            if content is None:
                if not isinstance(node, _Dir):
                    self._new(parts, _Dir(), durable=durable)
            elif isinstance(node, _File):
                node.data = bytearray(content)
                node.pending.clear()
                if durable:
                    node.durable = content
            else:
                self._new(parts, _File(content, content if durable else b""), durable=durable)

    def _walk(self, durable: bool) -> Iterator[tuple[str, int]]:
        stack: list[tuple[str, int, frozenset[int]]] = [("", 0, frozenset({0}))]
        while stack:
            prefix, nid, seen = stack.pop()
            node = self.nodes[nid]
            assert isinstance(node, _Dir)
            for name, child in sorted((node.durable if durable else node.entries).items()):
                path = f"{prefix}{name}"
                yield path, child
                if isinstance(self.nodes[child], _Dir) and child not in seen:
                    stack.append((f"{path}/", child, seen | {child}))

    def _path_of(self, target: int) -> str:
        for durable in (False, True):
            for path, nid in self._walk(durable):
                if nid == target:
                    return path
        return f"<file {target}>"

    def _tree(self, durable_names: bool, content: Callable[[int, _File], bytes]) -> Tree:
        tree: Tree = {}
        for path, nid in self._walk(durable_names):
            node = self.nodes[nid]
            tree[path] = content(nid, node) if isinstance(node, _File) else None
        return tree

    # -- listener ----------------------------------------------------------------------
    def before(self, op: DiskOp) -> int | None:
        """A crash point before each fsync."""
        if op.name == "fsync" and op.path is not None:
            with self.lock:
                self.capture(f"fsync {'/'.join(self._parts(op.path)) or '.'}")
        return None

    def after(self, op: DiskOp) -> None:  # noqa: PLR0912 - one branch per operation
        """Apply ``op`` to the model."""
        with self.lock:
            name = op.name
            if name == "sync":
                self.capture("sync")
                for each in self.nodes.values():
                    self._persist(each)
                return
            nid = self.fds.get(op.fd) if op.fd is not None else None
            if nid is None and op.path is not None and within(op.path, self.root):
                nid = self._lookup(self._parts(op.path))
            node = self.nodes.get(nid) if nid is not None else None
            if name == "open":
                self._open(op, nid)
            elif name == "close":
                self.fds.pop(op.fd or -1, None)
            elif name == "write" and isinstance(node, _File):
                write = (op.offset, op.data)
                _apply(node.data, write)
                node.pending.append(write)
                self.last_written = nid
            elif name == "truncate" and isinstance(node, _File):
                _apply(node.data, op.size)
                node.pending.append(op.size)
            elif name == "fsync" and node is not None:
                self._persist(node)
            elif name == "rename":
                self._rename(op)
            elif name in ("unlink", "rmdir") and op.path is not None:
                parts = self._parts(op.path)
                parent = self._parent(parts)
                if parent is not None:
                    parent.entries.pop(parts[-1], None)
            elif name == "mkdir" and op.path is not None:
                parts = self._parts(op.path)
                if self._lookup(parts) is None:
                    self._new(parts, _Dir(), durable=False)

    def _open(self, op: DiskOp, nid: int | None) -> None:
        assert op.path is not None
        assert op.fd is not None
        if nid is None:
            parts = self._parts(op.path)
            if op.is_dir or not op.created:  # it exists, but the model never saw it made
                self.unseen.add("/".join(parts))
                self._load({"/".join(parts): None if op.is_dir else b""}, durable=False)
                nid = self._lookup(parts)
            else:
                nid = self._new(parts, _File(), durable=False)
        elif op.truncated:
            node = self.nodes[nid]
            if isinstance(node, _File):
                _apply(node.data, 0)
                node.pending.append(0)
        if nid is not None:
            self.fds[op.fd] = nid

    def _rename(self, op: DiskOp) -> None:
        source = self._parts(op.path) if op.path is not None else None
        target = self._parts(op.target) if op.target is not None else None
        nid: int | None = None
        if source is not None:
            parent = self._parent(source)
            nid = parent.entries.pop(source[-1], None) if parent is not None else None
        if target is None:
            return
        if nid is None:  # moved in from outside the root, or made outside the model
            self.unseen.add("/".join(target))
            return
        parent = self._parent(target)
        if parent is not None:
            parent.entries[target[-1]] = nid

    @staticmethod
    def _persist(node: _File | _Dir) -> None:
        if isinstance(node, _File):
            node.durable = bytes(node.data)
            node.pending.clear()
        else:
            node.durable = dict(node.entries)

    # -- crash points --------------------------------------------------------------------
    def _verify(self) -> None:
        """Compare the model with the files: what differs changed outside the layer."""
        real = read_tree(self.path)
        model = self._tree(False, lambda _n, f: bytes(f.data))
        if real == model:
            return
        differ = {p for p in real.keys() | model.keys() if real.get(p, 0) != model.get(p, 0)}
        self.unseen.update(differ)
        if self.opaque == "durable":
            for path in sorted(differ - real.keys(), key=len, reverse=True):
                parts = tuple(path.split("/"))
                parent = self._parent(parts)
                if parent is not None:
                    parent.entries.pop(parts[-1], None)
                    parent.durable.pop(parts[-1], None)
            self._load({p: real[p] for p in differ & real.keys()}, durable=True)

    def capture(self, before: str) -> Point:
        """Take a crash point now, before the operation ``before``."""
        self._verify()
        states: list[tuple[str, bool, Tree]] = [
            ("lost", True, self._tree(True, lambda _n, f: f.durable)),
            ("metadata", False, self._tree(False, lambda _n, f: f.durable)),
            ("flushed", False, self._tree(False, lambda _n, f: bytes(f.data))),
        ]
        if self.torn:
            for nid, node in sorted(self.nodes.items()):
                cut = _torn(node) if isinstance(node, _File) else None
                if cut is None:
                    continue
                name = f"torn {self._path_of(nid)}"
                content = _torn_content(nid, cut)
                for durable_names in (True, False):
                    states.append((name, durable_names, self._tree(durable_names, content)))
        point = Point(len(self.points), before, tuple(self.acks),
                       self.observe() if self.observe is not None else None, states)
        self.points.append(point)
        return point

    def sink(self, kind: str, value: Any) -> None:
        """Where ``ack``/``boundary`` calls go while recording."""
        with self.lock:
            if kind == "ack":
                self.acks.append(value)
            else:
                self.capture(f"boundary {value}".strip())

    def raise_unseen(self) -> None:
        """Refuse a model that files changed outside the layer made wrong."""
        if self.unseen and self.opaque == "error":
            paths = tuple(sorted(self.unseen))
            raise ExplorerError(
                f"files under {self.root} changed outside Python's file API: "
                f"{', '.join(paths)}. Writes from C extensions such as SQLite are invisible "
                "to the crash model. Run the workload with explore_process(), which copies "
                "the files at each SQLite statement, or pass opaque='durable' to take their "
                "content at each crash point as durable.", paths=paths)
