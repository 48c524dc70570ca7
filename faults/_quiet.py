"""Is the rest of the process asleep? The test that lets a fault proxy move virtual time.

A proxy on a ``VirtualClock`` may jump the clock to its next deadline only when nothing
else in the process can still act: every other thread sleeps in the kernel (waiting on a
socket, a lock, a sleep) and none ran between two looks. Linux tells both per thread in
``/proc/self/task/<tid>/stat`` (state) and ``schedstat`` (nanoseconds on a CPU). A thread
waiting for the GIL wakes when the looking thread releases it (every read here does), so
it shows as running or as having run. Elsewhere the test is "nothing happened for
``_FALLBACK_IDLE`` seconds", which is not exact (documented in docs/network.md).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection

__all__ = ["Quiet"]

_TASKS = "/proc/self/task"
_ASLEEP = frozenset(b"STt")  # interruptible sleep, stopped, traced
_GAP = 0.0002  # seconds between the two looks (the GIL is released meanwhile)
_FALLBACK_IDLE = 0.005  # seconds of nothing happening, where /proc is missing

Snapshot = dict[int, int]


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 512)
    finally:
        os.close(fd)


def _snapshot(exclude: Collection[int]) -> Snapshot | None:
    """CPU nanoseconds per thread, or ``None`` if some thread is not asleep."""
    out: Snapshot = {}
    for name in os.listdir(_TASKS):
        tid = int(name)
        if tid in exclude:
            continue
        try:
            stat = _read(f"{_TASKS}/{name}/stat")
            ran = _read(f"{_TASKS}/{name}/schedstat")
        except OSError:  # the thread ended meanwhile
            continue
        state = stat[stat.rindex(b")") + 2]
        if state not in _ASLEEP:
            return None
        out[tid] = int(ran.split()[0])
    return out


class Quiet:
    """Answers "is every thread but ``exclude`` asleep, and has none run since?".

    Remembers the last quiet snapshot: when nothing ran since, one look is enough.
    """

    def __init__(self) -> None:
        self.proc = os.path.isdir(_TASKS) and os.path.exists(
            f"{_TASKS}/{threading.get_native_id()}/schedstat")
        self._last: Snapshot | None = None
        self._since = time.monotonic()

    def __call__(self, exclude: Collection[int]) -> bool:
        """Whether the process is quiet (see the class docstring)."""
        if not self.proc:
            return time.monotonic() - self._since >= _FALLBACK_IDLE
        first = _snapshot(exclude)
        if first is None:
            self._last = None
            return False
        if first == self._last:
            return True
        time.sleep(_GAP)
        second = _snapshot(exclude)
        self._last = second if second == first else None
        return self._last is not None

    def activity(self) -> None:
        """Something happened (the fallback's idle timer restarts)."""
        self._since = time.monotonic()
