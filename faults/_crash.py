"""Crash simulation at the Python I/O layer, and the crash-point explorer.

A ``Recorder`` (``faults._crash_model``) keeps a LazyFS-style model of the directory it
watches: what was written, and what of it is durable. A crash point is
taken just before each persistence operation (``fsync``, ``fdatasync``, ``os.sync``,
an ``O_SYNC`` write, or an explicit ``boundary()``) and when the workload ends; at each
one the states a crash may leave are:

- ``lost``: every write and every directory change since the last fsync is lost;
- ``metadata``: directory changes reached the disk, unsynced data did not (a file system
  that commits metadata first: the zero-length file after a rename);
- ``flushed``: everything reached the disk;
- ``torn <file>`` (with ``torn=True``): the file's unsynced writes reached the disk but the
  last one only in part (its first half), over the ``lost`` and the ``metadata``
  directories.

States that hold the same files and were reached after the same acknowledgements
(``ack()``) are one state: each distinct one is written into the root, the workload's
recovery runs on it and the check judges it. CrashMonkey's bounded exploration: crash
points at persistence boundaries, every distinguishable state checked.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from faults._crash_model import ExplorerError, Opaque, Point, Recorder, Tree, check_opaque
from faults._disk import check_root
from faults._disk_io import REAL, attach, detach
from faults._injector import Injector
from pytest_resilience import Clock, History, SystemClock, emit, validate
from pytest_resilience.kinds import (
    DISK_CRASH_STATE,
    DISK_EXPLORED,
    FAULT_ARMED,
    FAULT_DISARMED,
    FAULT_FIRED,
)

__all__ = [
    "CrashFailure",
    "CrashReport",
    "CrashSimulator",
    "CrashState",
    "ack",
    "aexplore",
    "boundary",
    "check_states",
    "crash_simulator",
    "distinct",
    "explore",
    "marker_sink",
]

_SOURCE = "disk"
_SHOWN_FAILURES = 5

_sink_lock = threading.Lock()
_sink: Callable[[str, Any], None] | None = None


def ack(value: Any) -> None:
    """Mark that the workload has acknowledged ``value`` (told its caller an operation is
    done and durable). Crash states remember what was acknowledged before them, so a
    check can demand it. Does nothing outside an explorer or simulator."""
    sink = _sink
    if sink is not None:
        sink("ack", value)


def boundary(label: str = "") -> None:
    """Add a crash point here (nothing is persisted by it), e.g. after a step whose
    durability the Python I/O layer cannot see. Does nothing outside an explorer."""
    sink = _sink
    if sink is not None:
        sink("boundary", label)


@contextmanager
def marker_sink(sink: Callable[[str, Any], None]) -> Iterator[None]:
    """Send ``ack``/``boundary`` calls to ``sink`` for the block (one at a time)."""
    global _sink  # noqa: PLW0603 - the one active explorer
    with _sink_lock:
        if _sink is not None:
            raise ExplorerError("Another crash explorer or simulator is recording in this "
                                "process. Run them one after the other.")
        _sink = sink
    try:
        yield
    finally:
        with _sink_lock:
            _sink = None


@dataclass(frozen=True)
class CrashState:
    """One state a crash may leave, as handed to ``check``.

    ``point``: persistence operations done before the crash; ``before``: the operation
    the crash precedes (``"fsync data.json.tmp"``, ``"end"``); ``variant``: ``lost``,
    ``metadata``, ``flushed``, ``torn <file>`` or ``copy`` (a child's files);
    ``files``: the files the crash left (posix paths relative to ``root``); ``acked``:
    what the workload acknowledged before the crash; ``observed``: what ``observe()``
    returned at that point; ``recovered``: what ``recover(root)`` returned.
    """

    root: Path
    point: int
    before: str
    variant: str
    files: Mapping[str, bytes]
    dirs: tuple[str, ...] = ()
    acked: tuple[Any, ...] = ()
    observed: Any = None
    recovered: Any = None


@dataclass(frozen=True)
class CrashFailure:
    """A crash state whose recovery or check failed, and the error it failed with."""

    state: CrashState
    error: BaseException

    def __str__(self) -> str:
        s = self.state
        files = ", ".join(f"{k} ({len(v)} B)" for k, v in sorted(s.files.items())) or "none"
        message = (str(self.error).splitlines() or [""])[0]  # pytest adds its explanation
        return (f"crash before {s.before} (point {s.point}, {s.variant}; acknowledged "
                f"{list(s.acked)}): {type(self.error).__name__}: {message}; files: {files}")


@dataclass(frozen=True)
class CrashReport:
    """What an exploration checked: crash points, distinct states, failures, and the files
    taken as durable because they changed outside the Python I/O layer."""

    root: str
    points: int
    states: int
    failures: tuple[CrashFailure, ...] = ()
    trusted: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every state recovered and passed the check."""
        return not self.failures

    def assert_ok(self) -> CrashReport:
        """Raise ``AssertionError`` describing the first failures unless ``ok``."""
        if self.failures:
            raise AssertionError(str(self))
        return self

    def __str__(self) -> str:
        head = (f"{self.states} crash states at {self.points} crash points under "
                f"{self.root}: {len(self.failures)} failed")
        lines = [f"  - {f}" for f in self.failures[:_SHOWN_FAILURES]]
        if len(self.failures) > _SHOWN_FAILURES:
            lines.append(f"  ... and {len(self.failures) - _SHOWN_FAILURES} more")
        return "\n".join([head, *lines])


# -- the model -------------------------------------------------------------------------
@contextmanager
def _recording(recorder: Recorder) -> Iterator[Recorder]:
    with marker_sink(recorder.sink):
        attach(recorder)
        try:
            yield recorder
        finally:
            detach(recorder)


def _digest(tree: Tree) -> str:
    digest = hashlib.sha256()
    for path in sorted(tree):
        content = tree[path]
        digest.update(path.encode() + (b"/" if content is None else b":"))
        if content is not None:
            digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def distinct(root: Path, points: list[Point]) -> list[CrashState]:
    """One ``CrashState`` per distinct (files, acknowledgements, observation)."""
    seen: set[tuple[str, str, str]] = set()
    out: list[CrashState] = []
    for point in points:
        for variant, _names, tree in point.states:
            key = (_digest(tree), repr(point.acked), repr(point.observed))
            if key in seen:
                continue
            seen.add(key)
            files = {p: c for p, c in tree.items() if c is not None}
            dirs = tuple(sorted(p for p, c in tree.items() if c is None))
            out.append(CrashState(root, point.point, point.before, variant, files, dirs,
                                  point.acked, point.observed))
    return out


# -- writing states into the root --------------------------------------------------------

def _wipe(path: Path) -> None:
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _wipe(Path(entry.path))
            REAL["rmdir"](entry.path)
        else:
            REAL["unlink"](entry.path)


def materialize(root: Path, state: CrashState) -> None:
    """Make ``root`` hold exactly ``state``'s directories and files."""
    if root.is_dir():
        _wipe(root)
    else:
        REAL["mkdir"](root)
    parents = {Path(p).parent.as_posix() for p in state.files} - {"."}
    for rel in sorted(set(state.dirs) | parents, key=lambda p: p.count("/")):
        for ancestor in (*reversed(Path(rel).parents[:-1]), Path(rel)):
            if not (root / ancestor).is_dir():
                REAL["mkdir"](root / ancestor)
    for rel, content in state.files.items():
        with REAL["io.open"](root / rel, "wb") as fh:
            fh.write(content)


@contextmanager
def _states_in_root(root: Path, states: list[CrashState]) -> Iterator[Iterator[CrashState]]:
    """Move the workload's real files aside, yield each state written into ``root``, and
    put the real files back afterwards, whatever happened."""
    aside = root.with_name(f".{root.name}.crash-{uuid.uuid4().hex[:8]}")
    REAL["rename"](root, aside)

    def each() -> Iterator[CrashState]:
        for state in states:
            materialize(root, state)
            yield state

    try:
        yield each()
    finally:
        if root.exists():
            _wipe(root)
            REAL["rmdir"](root)
        REAL["rename"](aside, root)


@dataclass
class _Verdicts:
    root: Path
    clock: Clock
    history: History | None
    points: int
    states: int = 0
    failures: list[CrashFailure] = field(default_factory=list)

    def judged(self, state: CrashState, error: BaseException | None) -> None:
        self.states += 1
        if error is not None:
            self.failures.append(CrashFailure(state, error))
        emit(DISK_CRASH_STATE, f"disk:{Path(self.root).name}", self.clock, history=self.history,
             point=state.point, before=state.before, variant=state.variant,
             files=len(state.files), acked=len(state.acked),
             outcome="ok" if error is None else "failed",
             error=None if error is None else repr(error))

    def report(self, trusted: tuple[str, ...]) -> CrashReport:
        report = CrashReport(str(self.root), self.points, self.states, tuple(self.failures),
                             trusted)
        emit(DISK_EXPLORED, f"disk:{Path(self.root).name}", self.clock, history=self.history,
             points=report.points, states=report.states, failures=len(report.failures))
        return report


def check_states(root: Path, states: list[CrashState], points: int, *,
                 recover: Callable[[Path], Any] | None, check: Callable[[CrashState], Any],
                 clock: Clock | None, history: History | None,
                 trusted: tuple[str, ...] = ()) -> CrashReport:
    """Write each state into ``root``, run ``recover`` and ``check`` on it; the root's own
    files are put back at the end."""
    verdicts = _Verdicts(root, clock or SystemClock(), history, points)
    with _states_in_root(root, states) as each:
        for state in each:
            try:
                done = replace(state, recovered=recover(root) if recover else None)
                check(done)
            except Exception as exc:  # a failed recovery or check is this state's verdict
                verdicts.judged(state, exc)
            else:
                verdicts.judged(state, None)
    return verdicts.report(trusted)


def _callables(check: Any, recover: Any, workload: Any) -> None:
    for name, value in (("workload", workload), ("check", check)):
        validate.check(callable(value), name, value, what="callable", accepted="a function",
                       kind=TypeError)
    validate.callable_or_none(recover, "recover",
                              accepted="a function of the root directory, or None")


def explore(root: Path | str, workload: Callable[[], Any], *,
            check: Callable[[CrashState], Any], recover: Callable[[Path], Any] | None = None,
            torn: bool = False, observe: Callable[[], Any] | None = None,
            opaque: Opaque = "error", clock: Clock | None = None,
            history: History | None = None) -> CrashReport:
    """Run ``workload()`` once, recording what it does under ``root``; then, for every
    crash point (each fsync boundary and the end) and every distinct state a crash there
    may leave, write that state into ``root``, run ``recover(root)`` and ``check(state)``.

    ``check`` raises (``assert``) when a state breaks an invariant; ``state.acked`` holds
    what the workload acknowledged with ``ack()`` before the crash. ``observe()`` is called
    at each crash point for state outside ``root`` (e.g. a database the workload also
    writes). The root's real files are put back afterwards. Returns a ``CrashReport``
    (``.assert_ok()``); raises ``ExplorerError`` when files changed outside Python's file
    API (unless ``opaque='durable'``).
    """
    path = check_root(root)
    _callables(check, recover, workload)
    clock, history = validate.clock(clock), validate.history(history)
    recorder = Recorder(path, torn=torn, opaque=opaque, observe=observe)
    with _recording(recorder):
        workload()
        recorder.capture("end")
    recorder.raise_unseen()
    return check_states(path, distinct(path, recorder.points), len(recorder.points),
                        recover=recover, check=check, clock=clock, history=history,
                        trusted=tuple(sorted(recorder.unseen)))


async def _maybe(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


async def aexplore(root: Path | str, workload: Callable[[], Awaitable[Any] | Any], *,
                   check: Callable[[CrashState], Awaitable[Any] | Any],
                   recover: Callable[[Path], Awaitable[Any] | Any] | None = None,
                   torn: bool = False, observe: Callable[[], Any] | None = None,
                   opaque: Opaque = "error", clock: Clock | None = None,
                   history: History | None = None) -> CrashReport:
    """``explore`` for coroutine functions: ``workload``, ``recover`` and ``check`` may be
    async (they are awaited) or plain."""
    path = check_root(root)
    _callables(check, recover, workload)
    clock, history = validate.clock(clock), validate.history(history)
    recorder = Recorder(path, torn=torn, opaque=opaque, observe=observe)
    with _recording(recorder):
        await _maybe(workload())
        recorder.capture("end")
    recorder.raise_unseen()
    states = distinct(path, recorder.points)
    verdicts = _Verdicts(path, clock, history, len(recorder.points))
    with _states_in_root(path, states) as each:
        for state in each:
            try:
                recovered = await _maybe(recover(path)) if recover is not None else None
                await _maybe(check(replace(state, recovered=recovered)))
            except Exception as exc:
                verdicts.judged(state, exc)
            else:
                verdicts.judged(state, None)
    return verdicts.report(tuple(sorted(recorder.unseen)))


class CrashSimulator(Injector):
    """Records what happens under ``root`` until ``crash()`` pulls the plug: the root then
    holds what a power cut at that moment leaves (a context manager, sync and async)."""

    def __init__(self, root: Path | str, *, opaque: Opaque = "error",
                 clock: Clock | None = None, history: History | None = None) -> None:
        self.path = check_root(root)
        self.opaque: Opaque = check_opaque(opaque)
        self.clock: Clock = validate.clock(clock)
        self.history = validate.history(history)
        self.label = f"crash_simulator({self.path.name})"
        self._recorder: Recorder | None = None
        self._context: Any = None

    def start(self) -> CrashSimulator:
        """Start recording (the root's files now are taken as durable)."""
        if self._recorder is None:
            recorder = Recorder(self.path, torn=True, opaque=self.opaque, observe=None)
            self._context = _recording(recorder)
            self._context.__enter__()
            self._recorder = recorder
            emit(FAULT_ARMED, _SOURCE, self.clock, history=self.history, family="disk",
                 fault=self.label, root=str(self.path))
        return self

    def stop(self) -> None:
        """Stop recording without a crash (the files stay as the workload left them)."""
        if self._recorder is not None:
            self._context.__exit__(None, None, None)
            self._recorder, self._context = None, None
            emit(FAULT_DISARMED, _SOURCE, self.clock, history=self.history, family="disk",
                 fault=self.label)

    def crash(self, *, metadata: bool = False, torn: bool = False) -> CrashState:
        """Crash now: every write since each file's last fsync is lost, and every create,
        rename and unlink since its directory's last fsync (``metadata=True`` keeps those);
        ``torn=True`` keeps the unsynced writes of the file written last, its last write
        cut in half. The root is rewritten to that state; recording stops. Close the
        workload's files first, and reopen (recover) afterwards."""
        recorder = self._recorder
        if recorder is None:
            raise RuntimeError("This simulator is not recording: crash() inside its block.")
        with recorder.lock:
            point = recorder.capture("crash")
        self.stop()
        recorder.raise_unseen()
        wanted = f"torn {recorder._path_of(recorder.last_written)}" \
            if torn and recorder.last_written is not None else None
        chosen = [s for s in point.states if s[0] == wanted and s[1] is not metadata] or \
            [s for s in point.states if s[0] == ("metadata" if metadata else "lost")]
        state = distinct(self.path, [replace(point, before="crash", observed=None,
                                             states=chosen[:1])])[0]
        materialize(self.path, state)
        emit(FAULT_FIRED, _SOURCE, self.clock, history=self.history, family="disk",
             action="crash", trigger="crash()", call=1, variant=state.variant,
             files=len(state.files), fault=self.label)
        return state


def crash_simulator(root: Path | str, *, opaque: Opaque = "error", clock: Clock | None = None,
                    history: History | None = None) -> CrashSimulator:
    """A ``CrashSimulator`` over ``root`` (an existing directory)."""
    return CrashSimulator(root, opaque=opaque, clock=clock, history=history)
