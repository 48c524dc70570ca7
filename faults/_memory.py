"""Host memory faults: simulated pressure, ``MemoryError`` at chosen points, a real OOM.

- ``memory_pressure(percent)`` makes every psutil memory reading in this process report
  ``percent`` used: ``psutil.PROCFS_PATH`` points at a copy of ``/proc`` whose
  ``meminfo`` has its ``MemAvailable``/``MemFree`` edited (everything else links to the
  real ``/proc``), so even ``from psutil import virtual_memory`` callers see it. Linux only.
- ``oom_at(target)`` raises ``MemoryError`` at a failpoint or a patched function.
- ``real_oom(limit_bytes, fn)`` runs ``fn`` in a forked child under ``RLIMIT_AS`` and
  reports whether it survived, raised ``MemoryError`` or was killed.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from faults._plan import Action, Trigger
from faults._registry import inject, instrument
from faults._stored import stored, wrap_stored
from pytest_resilience import Clock, History, emit, validate
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED
from pytest_resilience.patching import patch, patched

__all__ = ["MemoryPressure", "OOMOutcome", "memory_pressure", "oom_at", "real_oom"]

_PROCFS_LOCK = threading.Lock()
_OOM_MARKERS = ("can't allocate memory", "out of memory")


class MemoryPressure:
    """The active ``memory_pressure`` fault; ``set(percent)`` changes it in place."""

    def __init__(self, directory: Path, source: str, percent: float, *, name: str,
                 clock: Clock | None, history: History | None) -> None:
        self.directory = directory
        self.name = name
        self._source = source
        self._clock = clock
        self._history = history
        self.percent = percent
        self.set(percent)

    def set(self, percent: float) -> None:
        """Report ``percent`` (0-100) of memory used from now on."""
        percent = _check_percent(percent)
        self.percent = percent
        text = (Path(self._source) / "meminfo").read_text()
        (self.directory / "meminfo.tmp").write_text(_edit_meminfo(text, percent))
        os.replace(self.directory / "meminfo.tmp", self.directory / "meminfo")
        emit(FAULT_FIRED, self.name, self._clock, history=self._history, family="memory",
             action="pressure", trigger="set", call=0, percent=percent)


def _check_percent(percent: float) -> float:
    return validate.number(percent, "percent", low=0.0, high=100.0, what="a percentage",
                            accepted="a number from 0 to 100 (the share of memory "
                            "reported used)")


def _edit_meminfo(text: str, percent: float) -> str:
    """``meminfo`` with ``MemAvailable`` (and ``MemFree`` when above it) set for ``percent``."""
    lines = text.splitlines()
    total_kb = next(int(line.split()[1]) for line in lines if line.startswith("MemTotal:"))
    available_kb = round(total_kb * (100.0 - percent) / 100.0)
    out = []
    for line in lines:
        key = line.split(":", 1)[0]
        if key == "MemAvailable":
            out.append(f"MemAvailable:   {available_kb} kB")
        elif key == "MemFree":
            out.append(f"MemFree:        {min(int(line.split()[1]), available_kb)} kB")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


@contextmanager
def memory_pressure(
    percent: float,
    *,
    name: str = "memory_pressure",
    clock: Clock | None = None,
    history: History | None = None,
) -> Iterator[MemoryPressure]:
    """Make psutil report ``percent`` of system memory used for the block (Linux).

    Process-global (psutil's ``PROCFS_PATH``); restored in ``finally``. Processes
    started inside the block are not visible to ``psutil.Process`` by pid.
    """
    percent = _check_percent(percent)
    history = validate.history(history)
    import psutil

    if not sys.platform.startswith("linux"):
        raise RuntimeError(
            f"memory_pressure needs Linux's /proc (this is {sys.platform!r}). Skip the test "
            "elsewhere, or pass a reader= to MemoryPressureMonitor."
        )
    with _PROCFS_LOCK:
        previous = psutil.PROCFS_PATH
        directory = Path(tempfile.mkdtemp(prefix="resilience-proc-"))
        try:
            for entry in os.listdir(previous):
                if entry != "meminfo":
                    (directory / entry).symlink_to(os.path.join(previous, entry))
            fault = MemoryPressure(directory, previous, percent, name=name, clock=clock,
                                   history=history)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        procfs = patch(psutil, "PROCFS_PATH", str(directory))
    emit(FAULT_ARMED, name, clock, history=history, family="memory", percent=percent)
    try:
        yield fault
    finally:
        with _PROCFS_LOCK:
            procfs.restore()
            shutil.rmtree(directory, ignore_errors=True)
        emit(FAULT_DISARMED, name, clock, history=history, family="memory",
             percent=fault.percent)


@contextmanager
def oom_at(
    target: str | tuple[object, str],
    *,
    trigger: Trigger | None = None,
    message: str = "simulated out of memory",
    clock: Clock | None = None,
    history: History | None = None,
) -> Iterator[Any]:
    """Raise ``MemoryError(message)`` at ``target`` when ``trigger`` fires (always by default).

    ``target`` is a failpoint name (``faults.failpoint("load")`` in code), or an
    ``(object, "attribute")`` pair whose function is wrapped for the block and restored
    after. Yields the ``ActivePlan`` (``.calls(name)``, ``.fired(name)``).
    """
    action = Action.raise_(MemoryError(message))
    if isinstance(target, str):
        validate.text(target, "target", what="a failpoint name",
                       accepted="e.g. 'model.load', or an (object, 'attribute') pair")
        with inject(target, action, trigger=trigger, clock=clock, history=history) as plan:
            yield plan
        return
    if not (isinstance(target, tuple) and len(target) == 2 and isinstance(target[1], str)):
        raise TypeError(
            f"target={validate.show(target)} is not a failpoint name or (object, 'attribute') "
            f"pair. "
            "Pass e.g. 'model.load' or (torch, 'load')."
        )
    owner, attribute = target
    try:
        found = stored(owner, attribute)
    except AttributeError:
        raise ValueError(f"target={validate.show(target)} names no attribute "
                         f"{attribute!r}. Pass an existing function or method.") from None
    inner = found.__func__ if isinstance(found, staticmethod | classmethod) else found
    if not callable(inner):
        raise TypeError(f"target={validate.show(target)} names {validate.show(found)}, "
                        "which is not callable. Pass a function or method attribute.")
    point = f"oom:{getattr(owner, '__name__', type(owner).__name__)}.{attribute}"
    with inject(point, action, trigger=trigger, clock=clock, history=history) as plan, \
            patched(owner, attribute, wrap_stored(found, lambda fn: instrument(point, fn)),
                    label=f"target={validate.show(target)}"):
        yield plan


@dataclass(frozen=True, slots=True)
class OOMOutcome:
    """How a ``real_oom`` child ended.

    ``outcome``: ``survived`` (returned ``value``), ``memory_error`` (``MemoryError``, or
    torch's allocator ``RuntimeError`` / ``OutOfMemoryError``), ``error`` (another
    exception) or ``killed`` (ended by a signal or without a result: ``returncode``).
    """

    outcome: Literal["survived", "memory_error", "error", "killed"]
    returncode: int | None
    error: str | None = None
    value: Any = None


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _OOM_MARKERS)


def _child(conn: Connection, limit: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    import resource

    budget = _vm_size() + limit
    resource.setrlimit(resource.RLIMIT_AS, (budget, budget))
    try:
        value = fn(*args)
    except BaseException as exc:
        kind = "memory_error" if _is_oom(exc) else "error"
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        del exc
        conn.send((kind, text, None))
    else:
        try:
            conn.send(("survived", None, value))
        except Exception as exc:  # an unpicklable result
            conn.send(("survived", f"result not picklable: {exc!r}", None))
    conn.close()


def real_oom(limit_bytes: int, fn: Callable[..., Any], *args: Any,
             timeout: float = 60.0) -> OOMOutcome:
    """Run ``fn(*args)`` in a forked child allowed ``limit_bytes`` more address space.

    The limit is ``RLIMIT_AS`` = the child's size at fork + ``limit_bytes`` (so imports
    done before count as baseline). Linux only. A child still running after ``timeout``
    seconds is killed and reported ``killed``.
    """
    validate.count(limit_bytes, "limit_bytes", what="a positive integer",
                    accepted="the bytes the child may allocate beyond its size at start")
    if not callable(fn):
        raise TypeError(f"fn={validate.show(fn)} is not callable. Pass the function to run "
                        "in the child.")
    timeout = validate.seconds(timeout, "timeout", positive=True)
    if not sys.platform.startswith("linux"):
        raise RuntimeError(f"real_oom needs Linux (this is {sys.platform!r}).")
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, limit_bytes, fn, args), daemon=True)
    process.start()
    sender.close()
    result = None
    try:
        if receiver.poll(timeout):
            result = receiver.recv()
    except EOFError:
        result = None
    finally:
        receiver.close()
        process.join(5.0)
        if process.is_alive():
            process.kill()
            process.join(5.0)
    code = process.exitcode
    process.close()
    if result is None:
        return OOMOutcome("killed", code)
    kind, error, value = result
    return OOMOutcome(kind, code, error, value)
