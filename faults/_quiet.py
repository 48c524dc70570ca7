"""Is the rest of the process asleep? The test that lets a fault proxy move virtual time.

A proxy on a ``VirtualClock`` may jump the clock to its next deadline only when nothing
else in the process can still act: every other thread sleeps in the kernel (waiting on a
socket, a lock, a sleep) and none ran between two looks. Linux tells both per thread in
``/proc/self/task/<tid>/stat`` (state) and ``schedstat`` (nanoseconds on a CPU). A thread
waiting for the GIL wakes when the looking thread releases it (every read here does), so
it shows as running or as having run.

Bytes still on their way through the kernel count as activity too: a loaded machine
defers loopback delivery to ``ksoftirqd``, so the packets waiting in the per-CPU
backlogs (``/proc/net/softnet_stat``) must be none and the ``ksoftirqd`` threads asleep.

Where ``/proc`` is missing the test is "nothing happened for ``_FALLBACK_IDLE`` seconds",
which is not exact (docs/network.md says so).
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
_SOFTNET = "/proc/net/softnet_stat"
_KERNEL_PATIENCE = 0.02  # real seconds the kernel may look busy before it is ignored
_BACKLOG_FIELD = 11  # softnet_stat column: packets queued in the CPU's backlog (Linux 5.10+)

Snapshot = dict[int, int]


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 512)
    finally:
        os.close(fd)


def _softirq_threads() -> list[str]:
    """The ``stat`` paths of the kernel's ``ksoftirqd`` threads, when visible."""
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if name.isdigit():
            try:
                comm = _read(f"/proc/{name}/comm")
            except OSError:
                continue
            if comm.startswith(b"ksoftirqd/"):
                found.append(f"/proc/{name}/stat")
    return found


def _kernel_busy(softirq_threads: list[str]) -> bool:
    """Whether packets wait in a CPU's backlog or a ``ksoftirqd`` thread runs."""
    try:
        table = _read(_SOFTNET)
    except OSError:
        return False
    for line in table.split(b"\n"):
        fields = line.split()
        if len(fields) > _BACKLOG_FIELD and int(fields[_BACKLOG_FIELD], 16):
            return True
    for path in softirq_threads:
        try:
            stat = _read(path)
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2] == ord("R"):
            return True
    return False


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
    """Answers "is every thread but ``exclude`` asleep, and did none run since?".

    Use: ``first = quiet.look(exclude)``, then do whatever work is ready, and if there
    was none, ``quiet.confirm(exclude, first)``: true when every thread slept through,
    so nothing can have arrived since the work was looked for. ``confirm`` releases the
    GIL for a moment first, so that a thread waiting for it runs and shows, unless
    nothing ran since the last confirmed quiet.
    """

    def __init__(self) -> None:
        self.proc = os.path.isdir(_TASKS) and os.path.exists(
            f"{_TASKS}/{threading.get_native_id()}/schedstat")
        self._last: Snapshot | None = None
        self._since = time.monotonic()
        self._softirq = _softirq_threads() if self.proc else []
        self._busy_since: float | None = None

    def look(self, exclude: Collection[int]) -> Snapshot | None:
        """A snapshot of the other threads, or ``None`` if one is awake (or the kernel is
        still delivering bytes)."""
        if not self.proc:
            return {} if time.monotonic() - self._since >= _FALLBACK_IDLE else None
        first = _snapshot(exclude)
        if first is None or self._kernel():
            self._last = None
            return None
        return first

    def _kernel(self) -> bool:
        """Whether the kernel still delivers bytes; other processes' traffic can keep it
        busy, so after ``_KERNEL_PATIENCE`` of that it is no longer waited for."""
        if not _kernel_busy(self._softirq):
            self._busy_since = None
            return False
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        return now - self._busy_since < _KERNEL_PATIENCE

    def confirm(self, exclude: Collection[int], first: Snapshot) -> bool:
        """Whether every thread slept, unmoved, since ``first`` was taken."""
        if not self.proc:
            return True
        if first != self._last:
            time.sleep(_GAP)
        second = _snapshot(exclude)
        quiet = second == first and not self._kernel()
        self._last = second if quiet else None
        return quiet

    def activity(self) -> None:
        """Something happened (the fallback's idle timer restarts)."""
        self._since = time.monotonic()
