"""Disk faults under a directory the test names: a full disk, I/O errors, a read-only
file system and slow operations, raised as the real ``OSError`` with the real errno.

Every fault takes a ``root`` directory and acts only on operations on paths under it
(resolved, so a symlink pointing outside is never touched); everything else runs as
usual. They sit in the Python I/O layer (``faults._disk_io``), so writes from C
extensions such as SQLite do not see them.
"""

from __future__ import annotations

import errno as errnos
import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from faults._disk_io import DiskOp, attach, detach
from faults._injector import CountedInjector, TriggerCounter
from faults._plan import Trigger
from pytest_resilience import Clock, History, emit, validate
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED

__all__ = [
    "OPS",
    "DiskFault",
    "Op",
    "check_root",
    "io_error",
    "latency",
    "no_space",
    "read_only",
]

Op = Literal["open", "write", "fsync", "rename", "unlink", "mkdir"]
#: Operations a disk fault can act on: opening for writing or creating, writing
#: (``write``, ``pwrite``, truncate, buffered file writes), ``fsync``/``fdatasync``,
#: ``rename``/``replace``, ``unlink``/``rmdir`` and ``mkdir``.
OPS: tuple[str, ...] = ("open", "write", "fsync", "rename", "unlink", "mkdir")
_OP_OF = {"open": "open", "write": "write", "truncate": "write", "fsync": "fsync",
          "rename": "rename", "unlink": "unlink", "rmdir": "unlink", "mkdir": "mkdir"}
_SOURCE = "disk"


def check_root(root: Path | str) -> Path:
    """``root`` resolved; it must be an existing directory."""
    path = validate.path(root, "root", what="a directory path",
                         accepted="the directory the fault may act in, e.g. "
                                  "tmp_path / 'data'")
    if not path.is_dir():
        raise ValueError(f"root={str(root)!r} is not an existing directory. Create it first; "
                         "a disk fault acts only on files under the directory it is given.")
    return path.resolve()


def _ops(on: object) -> frozenset[str]:
    items = (on,) if isinstance(on, str) else \
        tuple(on) if isinstance(on, Iterable) and not isinstance(on, bytes | bytearray) \
        else None
    if items is None or not all(isinstance(op, str) for op in items):
        raise TypeError(f"on={validate.show(on)} is not an operation or a list of them. Pass "
                        f"some of: {', '.join(OPS)}.")
    chosen = frozenset(items)
    unknown = sorted(chosen - set(OPS))
    if not chosen or unknown:
        raise ValueError(f"on={validate.show(on)} names no operation or unknown ones "
                         f"{validate.show(unknown)}. Pass some of: {', '.join(OPS)}.")
    return chosen


class DiskFault(CountedInjector):
    """An armed disk fault: a context manager (sync and async) undone on exit.

    ``calls`` counts the operations it was asked about, ``fired`` those it acted on and
    ``written`` the bytes written under its root while armed.
    """

    def __init__(self, kind: str, root: Path | str, *, on: frozenset[str], code: int = 0,
                 limit: int | None = None, seconds: float = 0.0,
                 trigger: Trigger | None = None, seed: int = 0,
                 rng: random.Random | None = None, clock: Clock | None = None,
                 history: History | None = None, label: str) -> None:
        self.path = check_root(root)
        self.root = str(self.path)
        self.kind = kind
        self.on = on
        self.code = code
        self.limit = limit
        self.seconds = seconds
        self.clock: Clock = validate.clock(clock)
        self.history = validate.history(history)
        self.label = label
        self.counter = TriggerCounter(trigger, seed=seed, rng=rng, clock=self.clock)
        self.written = 0
        self._active = False

    def before(self, op: DiskOp) -> int | None:
        """Fail, shorten or delay ``op`` when it is one of ``on`` and the trigger fires."""
        name = _OP_OF.get(op.name)
        if name is None or name not in self.on or (op.name == "open" and not op.writable):
            return None
        if self.kind == "no_space":
            return self._space(op, name)
        fire, n = self.counter.decide()
        if not fire:
            return None
        self._record(op, n)
        if self.kind == "latency":
            self.clock.sleep(self.seconds)
            return None
        raise _error(self.code, op)

    def _space(self, op: DiskOp, name: str) -> int | None:
        left = (self.limit or 0) - self.written
        if op.name == "write":
            if op.size <= left or op.size == 0:
                return None
            self._record(op, self.counter.decide()[1])
            if left > 0:
                return left  # the disk fills up inside this write: a short write
            raise _error(errnos.ENOSPC, op)
        if name == "fsync" and left <= 0:
            self._record(op, self.counter.decide()[1])
            raise _error(errnos.ENOSPC, op)
        return None

    def after(self, op: DiskOp) -> None:
        """Count the bytes that were written."""
        if op.name == "write":
            self.written += op.size

    def _record(self, op: DiskOp, n: int) -> None:
        emit(FAULT_FIRED, _SOURCE, self.clock, history=self.history, family="disk",
             action=self.kind, trigger=str(self.counter.trigger), call=n, op=op.name,
             path=op.path, fault=self.label)

    def start(self) -> DiskFault:
        """Arm the fault."""
        if not self._active:
            self.counter.start()
            attach(self)
            self._active = True
            emit(FAULT_ARMED, _SOURCE, self.clock, history=self.history, family="disk",
                 fault=self.label, root=self.root)
        return self

    def stop(self) -> None:
        """Disarm (the last disk listener restores the originals)."""
        if self._active:
            detach(self)
            self._active = False
            emit(FAULT_DISARMED, _SOURCE, self.clock, history=self.history, family="disk",
                 fault=self.label, calls=self.calls, fired=self.fired, written=self.written)


def _error(code: int, op: DiskOp) -> OSError:
    """The ``OSError`` the kernel would give: paths name the file, fd calls do not."""
    message = os.strerror(code)
    if op.name == "rename":
        return OSError(code, message, op.path, None, op.target)
    if op.name in ("write", "truncate", "fsync") and op.fd is not None:
        return OSError(code, message)
    return OSError(code, message, op.path)


def no_space(root: Path | str, *, after: int = 0, on: str | Iterable[str] = "write",
             clock: Clock | None = None, history: History | None = None) -> DiskFault:
    """A disk that fills up: writes under ``root`` succeed until ``after`` bytes were
    written while armed (the write that crosses it is short), then raise ``OSError``
    ``ENOSPC``; with ``"fsync"`` in ``on``, so do fsyncs once it is full. Removing files
    does not free space."""
    after = validate.count(after, "after", low=0, what="a byte count")
    chosen = _ops(on)
    if not chosen <= {"write", "fsync"}:
        raise ValueError(f"on={validate.show(on)}: a full disk fails writes and fsyncs. "
                         "Pass 'write', 'fsync' or both.")
    return DiskFault("no_space", root, on=chosen, limit=after, clock=clock, history=history,
                     label=f"no_space(after={after})")


def io_error(root: Path | str, *, on: str | Iterable[str] = "write",
             trigger: Trigger | None = None, seed: int = 0, rng: random.Random | None = None,
             clock: Clock | None = None, history: History | None = None) -> DiskFault:
    """Fail the operations ``on`` (``OPS``) under ``root`` with ``OSError`` ``EIO``
    ("Input/output error") when ``trigger`` fires (always by default)."""
    chosen = _ops(on)
    return DiskFault("io_error", root, on=chosen, code=errnos.EIO, trigger=trigger, seed=seed,
                     rng=rng, clock=clock, history=history,
                     label=f"io_error(on={'+'.join(sorted(chosen))})")


def read_only(root: Path | str, *, on: str | Iterable[str] = OPS,
              trigger: Trigger | None = None, seed: int = 0, rng: random.Random | None = None,
              clock: Clock | None = None, history: History | None = None) -> DiskFault:
    """A file system remounted read-only: the operations ``on`` (all of ``OPS`` by
    default: opening for writing, writing, fsync, rename, unlink, mkdir) under ``root``
    fail with ``OSError`` ``EROFS``; reads still work."""
    chosen = _ops(on)
    return DiskFault("read_only", root, on=chosen, code=errnos.EROFS, trigger=trigger,
                     seed=seed, rng=rng, clock=clock, history=history,
                     label=f"read_only(on={'+'.join(sorted(chosen))})")


def latency(root: Path | str, seconds: float, *, on: str | Iterable[str] = ("write", "fsync"),
            trigger: Trigger | None = None, seed: int = 0, rng: random.Random | None = None,
            clock: Clock | None = None, history: History | None = None) -> DiskFault:
    """Delay the operations ``on`` under ``root`` by ``seconds`` on ``clock`` (the calling
    thread waits; a ``VirtualClock`` only moves)."""
    value = validate.seconds(seconds, "seconds", what="a valid delay")
    chosen = _ops(on)
    return DiskFault("latency", root, on=chosen, seconds=value, trigger=trigger, seed=seed,
                     rng=rng, clock=clock, history=history,
                     label=f"latency({value:g}s, on={'+'.join(sorted(chosen))})")
