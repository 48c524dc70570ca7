"""``StoreLock``: one writer per Chroma store at a time, across threads and processes.

Chroma has no lock of its own: two writer processes lose vectors silently, and a backup
copied while a writer syncs its index can pair files from two moments. Transactions,
backups, restores and ``recover`` therefore take an advisory ``fcntl.flock`` on
``<store>/.resilience/writer.lock`` (inside the store, so nothing is written where the
user did not point). Waits poll on the given clock and end at ``timeout`` with a
``LockTimeout`` that names the holder and the fix.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._errors import LockTimeout
from pytest_resilience.chroma._files import SIDE_DIR

__all__ = ["LOCK_NAME", "StoreLock"]

LOCK_NAME = f"{SIDE_DIR}/writer.lock"
_POLL = 0.05


@dataclass
class _Hold:
    """This process's hold on one store's lock: the flocked fd, by which thread."""

    thread: int
    reentrant: bool
    fd: int
    count: int = 1


_held_lock = threading.Lock()
_held: dict[str, _Hold] = {}  # lock path -> this process's hold on it


class StoreLock:
    """Exclusive writer lock of the store at ``store`` (a context manager).

    ``purpose`` is written into the lock file for the error another waiter sees. A
    thread that already holds the lock of a store is refused at once (it would wait for
    itself), unless both holds are ``reentrant``: then it shares the hold, which ends
    with the last release (transactions on two collections of one store).
    """

    def __init__(self, store: Path | str, *, timeout: float = 30.0, purpose: str = "write",
                 reentrant: bool = False, clock: Clock | None = None) -> None:
        self.timeout = _validate.seconds(timeout, "timeout", what="a number of seconds",
                                         accepted="a finite number >= 0")
        if not isinstance(store, str | os.PathLike):
            raise TypeError(f"store={_validate.show(store)} is not a path. Pass the directory "
                            "given to PersistentClient(path=...).")
        self.store = Path(store)
        self.path = self.store / LOCK_NAME
        self.purpose = _validate.text(purpose, "purpose", what="a purpose",
                                      accepted="a short description such as 'a backup'")
        self.reentrant = bool(reentrant)
        self.clock = _validate.clock(clock)
        self._hold: _Hold | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._hold is not None

    def acquire(self) -> StoreLock:
        """Take the lock, polling until ``timeout``; ``LockTimeout`` names the holder."""
        key = str(self.path.absolute())
        me = threading.get_ident()
        with _held_lock:
            hold = _held.get(key)
            if hold is not None and hold.thread == me:
                if self.reentrant and hold.reentrant:
                    hold.count += 1
                    self._hold = hold
                    return self
                raise LockTimeout(
                    f"This thread already holds the writer lock of {self.store} (an open "
                    f"transaction, backup or restore); {self.purpose} would wait for "
                    "itself. Finish the first one before starting another.",
                    resource=str(self.path), timeout=self.timeout)
        deadline = self.clock.monotonic() + self.timeout
        while True:
            fd = self._try()
            if fd is not None:
                break
            if self.clock.monotonic() >= deadline:
                raise LockTimeout(self._timeout_message(), resource=str(self.path),
                                  timeout=self.timeout)
            self.clock.sleep(min(_POLL, max(0.0, deadline - self.clock.monotonic())))
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} ({self.purpose})\n".encode())
        with _held_lock:
            self._hold = _held[key] = _Hold(me, self.reentrant, fd)
        return self

    def _try(self) -> int | None:
        """An fd holding the lock on the file now at ``path``, or ``None`` when busy."""
        if not self.store.is_dir():
            return None  # a restore is swapping the store in: wait for it
        try:
            self.path.parent.mkdir(exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            now = os.stat(self.path)
            mine = os.fstat(fd)
            if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
                return fd
        except (BlockingIOError, FileNotFoundError):
            pass
        os.close(fd)
        return None

    def _timeout_message(self) -> str:
        head = (f"Could not take the writer lock of {self.store} for {self.purpose} within "
                f"{self.timeout:g} s: ")
        if not self.store.is_dir():
            return head + ("there is no directory at that path (nor did a restore swap one "
                           "in). Pass the directory given to PersistentClient(path=...).")
        try:
            text = self.path.read_text("utf-8").strip()
        except OSError:
            text = ""
        holder = f"another writer ({text})" if text else "another writer"
        return head + (f"{holder} holds {self.path}. Wait for that transaction, backup or "
                       "restore to finish (or stop that writer), or pass a longer "
                       "lock_timeout=.")

    def release(self) -> None:
        """Let the lock go (idempotent); a shared hold ends with its last release."""
        hold, self._hold = self._hold, None
        if hold is None:
            return
        with _held_lock:
            hold.count -= 1
            if hold.count:
                return
            _held.pop(str(self.path.absolute()), None)
        os.close(hold.fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
