"""The crash-point explorer for a workload in a child process, for files SQLite writes.

The child runs ``script`` (a Python file) with ``sys.executable``. Before each SQLite
statement on a database under ``root`` (each ``sqlite3.connect`` in the child is watched
with ``set_trace_callback``) and at each ``faults.disk.boundary()``, the child stops and
the parent copies every file under ``root`` (the database, its ``-wal``, its
``-journal``). Each copy is what a crash at that moment leaves when everything written
so far had reached the disk. SQLite's own fsync ordering (``PRAGMA synchronous``) is
what makes a committed transaction's pages durable: it is trusted, not simulated (its
own test suite simulates it with a crash VFS that Python's ``sqlite3`` cannot load). The
child is a real process, so its file locks never interfere with the copying.
"""

from __future__ import annotations

import json
import os
import runpy
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from faults._crash import CrashReport, CrashState, boundary, check_states, distinct, marker_sink
from faults._crash_model import ExplorerError, Point, read_tree
from faults._disk import check_root
from faults._disk_io import within
from pytest_resilience import Clock, History, validate

__all__ = ["explore_process"]

_CHANNEL = "RESILIENCE_CRASH_CHANNEL"
_ROOT = "RESILIENCE_CRASH_ROOT"
_SQLITE = "RESILIENCE_CRASH_SQLITE"
_STDERR_TAIL = 2000
# The longest ``timeout`` (seconds) ``explore_process`` takes: a day.
_MAX_TIMEOUT = 86400.0


def explore_process(script: Path | str, root: Path | str, *, args: Sequence[str] = (),
                    check: Callable[[CrashState], Any],
                    recover: Callable[[Path], Any] | None = None, sqlite: bool = True,
                    timeout: float = 60.0, clock: Clock | None = None,
                    history: History | None = None) -> CrashReport:
    """Run ``script`` (argv: ``script *args``) in a child process, copy the files under
    ``root`` before each SQLite statement (``sqlite=True``) and at each
    ``faults.disk.boundary()``, then write each distinct copy into ``root`` and run
    ``recover(root)`` and ``check(state)`` on it, like ``explore``.

    The script reports what it acknowledged with ``faults.disk.ack(value)`` (JSON values).
    ``timeout`` (seconds, at most 86400) bounds the child's real running time. The root's
    own files are put back afterwards. Raises ``ExplorerError`` when the script fails or
    runs out of time.
    """
    path = check_root(root)
    source = validate.path(script, "script", what="a script path",
                           accepted="the path of a Python script that runs the workload")
    if not source.is_file():
        raise ValueError(f"script={str(source)!r} is not a file. Pass the path of a Python "
                         "script that runs the workload.")
    argv = _args(args)
    validate.check(callable(check), "check", check, what="callable",
                   accepted="a function of the crash state", kind=TypeError)
    validate.callable_or_none(recover, "recover",
                              accepted="a function of the root directory, or None")
    timeout = validate.number(timeout, "timeout", low=0.0, low_open=True, high=_MAX_TIMEOUT,
                              what="a valid timeout",
                              accepted=f"seconds > 0 and <= {_MAX_TIMEOUT:g}")
    clock, history = validate.clock(clock), validate.history(history)
    points = _run_child(source, path, argv, sqlite=sqlite, timeout=timeout)
    return check_states(path, distinct(path, points), len(points), recover=recover,
                        check=check, clock=clock, history=history)


def _args(args: object) -> list[str]:
    """The script's arguments as strings (``str`` or path items)."""
    items = tuple(args) if isinstance(args, Iterable) and not isinstance(args, str | bytes) \
        else None
    if items is None or not all(isinstance(a, str | os.PathLike) for a in items):
        raise TypeError(f"args={validate.show(args)} is not a list of arguments. Pass a list "
                        "of strings, e.g. ['--rows', '100'].")
    return [os.fsdecode(a) for a in items]


def _run_child(script: Path, root: Path, args: list[str], *, sqlite: bool,
               timeout: float) -> list[Point]:
    ctl_read, ctl_write = os.pipe()
    go_read, go_write = os.pipe()
    env = {**os.environ, _CHANNEL: f"{ctl_write},{go_read}", _ROOT: str(root),
           _SQLITE: "1" if sqlite else "0"}
    deadline = time.monotonic() + timeout
    points: list[Point] = []
    acks: list[Any] = []
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "faults._crash_process", str(script), *args],
                pass_fds=(ctl_write, go_read), env=env, stdin=subprocess.DEVNULL,
                stderr=errors)
        finally:
            os.close(ctl_write)
            os.close(go_read)
        try:
            _serve(ctl_read, go_write, root, points=points, acks=acks, deadline=deadline,
                   script=script)
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            os.close(ctl_read)
            os.close(go_write)
        if proc.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-_STDERR_TAIL:]
            raise ExplorerError(f"The workload {script} failed (exit status "
                                f"{proc.returncode}):\n{tail}")
    points.append(Point(len(points), "end", tuple(acks), None,
                         [("copy", False, read_tree(root))]))
    return points


def _serve(ctl: int, go: int, root: Path, *, points: list[Point], acks: list[Any],
           deadline: float, script: Path) -> None:
    """Answer the child until it closes its end: copy at each boundary, note each ack."""
    buffer = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ExplorerError(f"The workload {script} did not finish within its "
                                "timeout; it was killed.")
        ready, _, _ = select.select([ctl], [], [], left)
        if not ready:
            continue
        chunk = os.read(ctl, 65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            kind, _, payload = line.partition(b" ")
            if kind == b"A":
                acks.append(json.loads(payload))
                continue
            points.append(Point(len(points), json.loads(payload), tuple(acks), None,
                                 [("copy", False, read_tree(root))]))
            os.write(go, b"g")


def _watch_sqlite(root: str) -> None:
    """Make every connection to a database under ``root`` stop before each statement."""
    import sqlite3

    real_connect = sqlite3.connect

    def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = real_connect(database, *args, **kwargs)
        name = os.fsdecode(database) if isinstance(database, str | bytes | os.PathLike) else ""
        if name.startswith("file:"):
            name = name[5:].split("?", 1)[0]
        if name and within(os.path.realpath(name), root):
            conn.set_trace_callback(
                lambda statement: boundary("sql " + " ".join(statement.split())[:60]))
        return conn

    sqlite3.connect = connect  # type: ignore[assignment]


def _child(argv: list[str]) -> None:
    """The child: run the script with ``ack``/``boundary`` wired to the parent."""
    script, *args = argv
    ctl, go = (int(x) for x in os.environ.pop(_CHANNEL).split(","))
    root = os.environ.pop(_ROOT)
    out = os.fdopen(ctl, "wb", buffering=0)
    answers = os.fdopen(go, "rb", buffering=0)

    def sink(kind: str, value: Any) -> None:
        if kind == "ack":
            out.write(b"A " + json.dumps(value).encode() + b"\n")
            return
        out.write(b"B " + json.dumps(str(value)).encode() + b"\n")
        if not answers.read(1):
            raise SystemExit("the crash explorer went away")

    with marker_sink(sink):
        if os.environ.pop(_SQLITE, "1") == "1":
            _watch_sqlite(root)
        sys.argv = [script, *args]
        sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    _child(sys.argv[1:])
