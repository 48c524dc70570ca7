"""Disk faults and crash simulation, for files under a directory the test names.

- ``no_space``, ``io_error``, ``read_only``, ``latency``: a full disk (``ENOSPC`` after N
  bytes), ``EIO`` and ``EROFS`` on chosen operations, added latency on the clock; the
  real ``OSError`` with the real errno. Context managers, undone on exit.
- ``crash_simulator(root)``: records what the workload does under ``root``; ``crash()``
  leaves what a power cut would (writes since each file's last fsync lost, creates and
  renames since their directory's last fsync lost, optionally the last write torn).
- ``explore(root, workload, check=..., recover=...)``: runs the workload once, then for
  every fsync boundary checks every distinct state a crash there may leave
  (CrashMonkey's bounded exploration); ``ack(value)`` marks what the workload promised.
- ``explore_process(script, root, ...)``: the same for a workload in a child process whose
  files SQLite writes: the files are copied before each SQLite statement.

All of it sits in the Python I/O layer (``open``, ``os.write``, ``os.fsync``,
``os.replace``, ...): writes from C extensions (SQLite, HNSW indexes, ``mmap``) are not
seen, and the explorer refuses a model they made wrong (see docs/process-and-disk.md).
"""

from __future__ import annotations

from faults._crash import (
    CrashFailure,
    CrashReport,
    CrashSimulator,
    CrashState,
    ack,
    aexplore,
    boundary,
    crash_simulator,
    explore,
)
from faults._crash_model import ExplorerError, Opaque
from faults._crash_process import explore_process
from faults._disk import OPS, DiskFault, Op, io_error, latency, no_space, read_only

__all__ = [
    "OPS",
    "CrashFailure",
    "CrashReport",
    "CrashSimulator",
    "CrashState",
    "DiskFault",
    "ExplorerError",
    "Op",
    "Opaque",
    "ack",
    "aexplore",
    "boundary",
    "crash_simulator",
    "explore",
    "explore_process",
    "io_error",
    "latency",
    "no_space",
    "read_only",
]
