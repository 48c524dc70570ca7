"""The crash simulator and the crash-point explorer, on real files in ``tmp_path``."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults import disk
from pytest_resilience import recording

OLD, NEW = b'{"version": 1}', b'{"version": 2, "weights": "sha256:ab12"}'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.mkdir()
    (path / "model.json").write_bytes(OLD)
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(root: Path, *, fsync_file: bool = True, fsync_directory: bool = True) -> None:
    """Write a temporary file, fsync it, rename it over the old one, fsync the directory
    (the correct writer), or skip one of the fsyncs."""
    tmp = root / "model.json.tmp"
    with open(tmp, "wb") as fh:
        fh.write(NEW)
        fh.flush()
        if fsync_file:
            os.fsync(fh.fileno())
    os.replace(tmp, root / "model.json")
    if fsync_directory:
        fsync_dir(root)
    disk.ack("saved")


def correct_writer(root: Path) -> None:
    save(root)


def forgets_fsync_before_rename(root: Path) -> None:
    save(root, fsync_file=False)


def forgets_the_directory_fsync(root: Path) -> None:
    save(root, fsync_directory=False)


def old_or_new(state: disk.CrashState) -> None:
    """The invariant: the config is whole, old or new, and new once ``saved`` was said."""
    data = state.files.get("model.json")
    if "saved" in state.acked:
        assert data == NEW, f"acknowledged, but model.json holds {data!r}"
    else:
        assert data in (OLD, NEW), f"model.json holds {data!r}"


def explore(root: Path, writer: Callable[[Path], None], **kwargs: object) -> disk.CrashReport:
    return disk.explore(root, lambda: writer(root), check=old_or_new, **kwargs)  # type: ignore[arg-type]


# -- the rename writer ------------------------------------------------------------------------

def test_the_correct_writer_passes_every_crash_state(root: Path) -> None:
    report = explore(root, correct_writer).assert_ok()
    assert (report.points, report.states) == (3, 5)


def test_the_explorer_counts_the_crash_states_of_a_known_workload(root: Path) -> None:
    """Three crash points: before the file's fsync, before the directory's, the end.

    before fsync model.json.tmp: lost (old), metadata (old + empty tmp), flushed (old +
    whole tmp), torn (old + half of tmp); before fsync of ".": lost (old, a state seen
    already), metadata = flushed (new); at the end: new, now acknowledged. 5 states, 6
    with torn writes.
    """
    seen: list[tuple[int, str, dict[str, bytes], tuple[object, ...]]] = []
    report = disk.explore(root, lambda: correct_writer(root), torn=True,
                          check=lambda s: seen.append((s.point, s.variant, dict(s.files),
                                                       s.acked)))
    assert (report.points, report.states) == (3, 6)
    assert seen == [
        (0, "lost", {"model.json": OLD}, ()),
        (0, "metadata", {"model.json": OLD, "model.json.tmp": b""}, ()),
        (0, "flushed", {"model.json": OLD, "model.json.tmp": NEW}, ()),
        (0, "torn model.json.tmp", {"model.json": OLD, "model.json.tmp": NEW[:20]}, ()),
        (1, "metadata", {"model.json": NEW}, ()),
        (2, "lost", {"model.json": NEW}, ("saved",)),
    ]


def test_a_writer_that_forgets_fsync_before_rename_is_caught(root: Path) -> None:
    report = explore(root, forgets_fsync_before_rename)
    assert not report.ok
    assert [(f.state.before, f.state.variant) for f in report.failures] == [
        ("fsync .", "metadata"), ("end", "lost")]
    assert str(report).splitlines()[1:] == [
        "  - crash before fsync . (point 0, metadata; acknowledged []): AssertionError: "
        "model.json holds b''; files: model.json (0 B)",
        "  - crash before end (point 1, lost; acknowledged ['saved']): AssertionError: "
        "acknowledged, but model.json holds b''; files: model.json (0 B)",
    ]
    with pytest.raises(AssertionError, match="2 failed"):
        report.assert_ok()


def test_a_writer_that_forgets_the_directory_fsync_is_caught(root: Path) -> None:
    report = explore(root, forgets_the_directory_fsync)
    assert [(f.state.before, f.state.variant) for f in report.failures] == [("end", "lost")]
    assert report.failures[0].state.files == {"model.json": OLD}  # the rename was lost


def test_the_real_files_are_put_back_after_exploring(root: Path) -> None:
    explore(root, correct_writer)
    assert sorted(os.listdir(root)) == ["model.json"]
    assert (root / "model.json").read_bytes() == NEW
    assert sorted(os.listdir(root.parent)) == ["config"]   # nothing left beside it


# -- an append-only journal with a torn tail --------------------------------------------------

def journal_writer(root: Path) -> None:
    with open(root / "journal.jsonl", "ab") as fh:
        fsync_dir(root)                                    # the new file's name is durable
        for n in range(3):
            fh.write(json.dumps({"op": n, "pad": "x" * 20}).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
            disk.ack(n)


def naive_reader(root: Path) -> list[int]:
    path = root / "journal.jsonl"
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [json.loads(line)["op"] for line in lines]


def tolerant_reader(root: Path) -> list[int]:
    path = root / "journal.jsonl"
    data = path.read_bytes() if path.exists() else b""
    complete = data[:data.rfind(b"\n") + 1]                # an unfinished last line is dropped
    return [json.loads(line)["op"] for line in complete.splitlines()]


def every_acknowledged_entry_survives(state: disk.CrashState) -> None:
    assert list(state.recovered)[:len(state.acked)] == list(state.acked)


@pytest.mark.parametrize(("reader", "failed"), [(naive_reader, 3), (tolerant_reader, 0)])
def test_a_torn_journal_tail_breaks_only_the_naive_reader(
        tmp_path: Path, reader: Callable[[Path], list[int]], failed: int) -> None:
    report = disk.explore(tmp_path, lambda: journal_writer(tmp_path), torn=True,
                          recover=reader, check=every_acknowledged_entry_survives)
    assert report.points == 5                              # 4 fsyncs and the end
    assert len(report.failures) == failed
    assert all(f.state.variant == "torn journal.jsonl" for f in report.failures)
    assert all(isinstance(f.error, json.JSONDecodeError) for f in report.failures)


# -- the crash simulator ---------------------------------------------------------------------

def test_a_crash_loses_unsynced_writes_and_unsynced_creates(tmp_path: Path) -> None:
    (tmp_path / "kept.log").write_bytes(b"before\n")
    with recording() as history, disk.crash_simulator(tmp_path) as simulator:
        with open(tmp_path / "kept.log", "ab") as fh:
            fh.write(b"synced\n")
            fh.flush()
            os.fsync(fh.fileno())
            fh.write(b"lost\n")
        (tmp_path / "new.log").write_bytes(b"never synced")
        state = simulator.crash()
    assert (state.variant, dict(state.files)) == ("lost", {"kept.log": b"before\nsynced\n"})
    assert sorted(os.listdir(tmp_path)) == ["kept.log"]
    assert (tmp_path / "kept.log").read_bytes() == b"before\nsynced\n"
    assert [e.kind for e in history.select(source="disk")] == [
        "fault.armed", "fault.disarmed", "fault.fired"]


def test_a_crash_can_keep_metadata_and_tear_the_last_write(tmp_path: Path) -> None:
    with disk.crash_simulator(tmp_path) as simulator:
        (tmp_path / "a.bin").write_bytes(b"0123456789")
        state = simulator.crash(metadata=True, torn=True)
    assert (state.variant, dict(state.files)) == ("torn a.bin", {"a.bin": b"01234"})
    with disk.crash_simulator(tmp_path) as simulator:
        (tmp_path / "b.bin").write_bytes(b"abc")
        state = simulator.crash(metadata=True)
    assert dict(state.files) == {"a.bin": b"01234", "b.bin": b""}   # a zero-length file


# -- what the Python I/O layer cannot see ----------------------------------------------------

def test_sqlite_writes_are_refused_as_unseen(tmp_path: Path) -> None:
    def workload() -> None:
        with sqlite3.connect(tmp_path / "jobs.db") as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER)")
            conn.execute("INSERT INTO jobs VALUES (1)")
        conn.close()
        (tmp_path / "marker").write_bytes(b"x")
        fsync_dir(tmp_path)

    with pytest.raises(disk.ExplorerError) as caught:
        disk.explore(tmp_path, workload, check=lambda s: None)
    assert str(caught.value) == (
        f"files under {tmp_path} changed outside Python's file API: jobs.db. Writes from C "
        "extensions such as SQLite are invisible to the crash model. Run the workload with "
        "explore_process(), which copies the files at each SQLite statement, or pass "
        "opaque='durable' to take their content at each crash point as durable.")
    assert caught.value.paths == ("jobs.db",)
    report = disk.explore(tmp_path, workload, check=lambda s: None, opaque="durable")
    assert report.trusted == ("jobs.db",)


def test_a_failing_child_workload_is_reported(tmp_path: Path) -> None:
    script = tmp_path / "work.py"
    script.write_text("raise SystemExit('the workload broke')\n")
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(disk.ExplorerError) as caught:
        disk.explore_process(script, data, check=lambda s: None)
    assert str(caught.value) == (f"The workload {script} failed (exit status 1):\n"
                                 "the workload broke\n")


def test_a_child_workload_that_overruns_its_timeout_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "work.py"
    script.write_text("import faults.disk\nfaults.disk.ack('started')\n"
                      "import time\nwhile True:\n    time.sleep(1)\n")
    with pytest.raises(disk.ExplorerError, match="did not finish within its timeout"):
        disk.explore_process(script, tmp_path, check=lambda s: None, timeout=0.5)


# -- observe, recover, async -----------------------------------------------------------------

def test_observe_and_recover_reach_the_check(root: Path) -> None:
    steps: list[str] = []

    def workload() -> None:
        steps.append("rename")
        correct_writer(root)

    seen: list[tuple[str, object, object]] = []
    disk.explore(root, workload, observe=lambda: len(steps),
                 recover=lambda r: (r / "model.json").read_bytes()[:14],
                 check=lambda s: seen.append((s.before, s.observed, s.recovered)))
    assert seen[0] == ("fsync model.json.tmp", 1, OLD[:14])
    assert seen[-1] == ("end", 1, NEW[:14])


def test_a_recovery_that_raises_fails_that_state(root: Path) -> None:
    def recover(path: Path) -> None:
        if (path / "model.json.tmp").exists():
            raise RuntimeError("leftover temporary file")

    report = disk.explore(root, lambda: correct_writer(root), recover=recover,
                          check=old_or_new)
    assert [str(f.error) for f in report.failures] == ["leftover temporary file"] * 2


@pytest.mark.asyncio
async def test_aexplore_awaits_async_workloads_and_checks(root: Path) -> None:
    async def workload() -> None:
        correct_writer(root)

    async def check(state: disk.CrashState) -> None:
        old_or_new(state)

    report = await disk.aexplore(root, workload, check=check)
    assert (report.ok, report.states) == (True, 5)


def test_explorers_do_not_nest(root: Path) -> None:
    def nested() -> None:
        disk.explore(root, lambda: None, check=lambda s: None)

    with pytest.raises(disk.ExplorerError, match="Another crash explorer or simulator"):
        disk.explore(root, nested, check=lambda s: None)


# -- a property: the model agrees with the files ----------------------------------------------

ACTIONS = st.lists(st.tuples(st.sampled_from(["write", "append", "fsync", "rename", "unlink",
                                              "dirsync"]),
                             st.sampled_from(["a", "b", "c"]), st.binary(max_size=8)),
                   max_size=10)


def run_actions(root: Path, actions: list[tuple[str, str, bytes]]) -> int:
    """Apply ``actions`` to files a, b, c under ``root``; returns the fsyncs made."""
    fsyncs = 0
    for action, name, data in actions:
        path = root / name
        if action in ("write", "append"):
            with open(path, "wb" if action == "write" else "ab") as fh:
                fh.write(data)
        elif action == "fsync" and path.exists():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            fsyncs += 1
        elif action == "rename" and path.exists():
            os.replace(path, root / f"{name}{len(data)}")
        elif action == "unlink" and path.exists():
            path.unlink()
        elif action == "dirsync":
            fsync_dir(root)
            fsyncs += 1
    return fsyncs


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_crash_points_and_states_follow_the_fsyncs(tmp_path: Path,
                                                   actions: list[tuple[str, str, bytes]]
                                                   ) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    states: list[disk.CrashState] = []
    made: list[int] = []
    report = disk.explore(root, lambda: made.append(run_actions(root, actions)),
                          check=states.append)
    real = {p.name: p.read_bytes() for p in root.iterdir()}
    assert report.points == made[0] + 1                    # one per fsync, and the end
    assert any(dict(s.files) == real for s in states)      # everything flushed at the end
    if not any(a == "dirsync" for a, _, _ in actions):     # no directory fsync: a crash
        assert all(not s.files for s in states if s.variant == "lost")  # keeps no new file
    assert {p.name: p.read_bytes() for p in root.iterdir()} == real


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"check": "assert"}, "check='assert' is not callable. Pass a function."),
    ({"check": print, "recover": 3}, "recover=3 is not callable. Pass a function of the root "
     "directory, or None."),
    ({"check": print, "opaque": "trust"}, "opaque='trust' is not a policy. Pass 'error' "
     "(refuse files changed outside the Python I/O layer) or 'durable' (take their content "
     "at each crash point as durable)."),
])
def test_bad_explorer_arguments_are_refused_with_the_fix(root: Path, kwargs: dict[str, object],
                                                         message: str) -> None:
    with pytest.raises((TypeError, ValueError)) as caught:
        disk.explore(root, lambda: None, **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def _nested(depth: int) -> list[object]:
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    return [value]


_CLOCK_FIX = ("Pass an object with monotonic(), time(), sleep() and asleep() (a VirtualClock "
              "or SystemClock instance), or None.")
_OPAQUE_FIX = ("Pass 'error' (refuse files changed outside the Python I/O layer) or "
               "'durable' (take their content at each crash point as durable).")


@pytest.mark.parametrize(("build", "message"), [
    (lambda r: disk.CrashSimulator(r, opaque=_nested(5000)),
     f"opaque=[[[[[[[...]]]]]]] is not a policy. {_OPAQUE_FIX}"),
    (lambda r: disk.crash_simulator(r, clock=True), f"clock=True is not a clock. {_CLOCK_FIX}"),
    (lambda r: disk.explore(r, lambda: None, check=print, clock=True),
     f"clock=True is not a clock. {_CLOCK_FIX}"),
    (lambda r: asyncio.run(disk.aexplore(r, lambda: None, check=print, clock=True)),
     f"clock=True is not a clock. {_CLOCK_FIX}"),
    (lambda r: disk.explore_process(None, r, check=print),  # type: ignore[arg-type]
     "script=None is not a script path. Pass the path of a Python script that runs the "
     "workload."),
    (lambda r: disk.explore_process(_script(r), r, check=None),  # type: ignore[arg-type]
     "check=None is not callable. Pass a function of the crash state."),
    (lambda r: disk.explore_process(_script(r), r, check=print, args=None),  # type: ignore[arg-type]
     "args=None is not a list of arguments. Pass a list of strings, e.g. ['--rows', '100']."),
    (lambda r: disk.explore_process(_script(r), r, check=print, timeout=None),  # type: ignore[arg-type]
     "timeout=None is not a valid timeout. Pass seconds > 0 and <= 86400."),
    (lambda r: disk.explore_process(_script(r), r, check=print, timeout=2**63),
     "timeout=9223372036854775808 is not a valid timeout. Pass seconds > 0 and <= 86400."),
])
def test_wrong_types_are_refused_before_anything_runs(root: Path, build: Callable[[Path], Any],
                                                      message: str) -> None:
    """Regression (issue 14 item 11): opaque nested 5000 deep raised RecursionError (its
    repr), clock=True an AttributeError after the workload ran, timeout=None/2**63 a
    TypeError or OverflowError and script/args=None a TypeError, none naming the
    argument. No child process starts: the script is never run."""
    with pytest.raises((TypeError, ValueError)) as caught:
        build(root)
    assert str(caught.value) == message
    assert not (root / "ran").exists()


def _script(root: Path) -> Path:
    script = root.parent / "workload.py"
    script.write_text(f"open({str(root / 'ran')!r}, 'w').close()\n")
    return script
