"""Disk faults under a named directory: ENOSPC, EIO, EROFS and latency, as the real OSError.

Everything runs on real files in ``tmp_path``; latency moves a ``VirtualClock``.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults import Trigger, disk
from faults._disk_io import REAL
from pytest_resilience import VirtualClock, recording


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


# -- a full disk -----------------------------------------------------------------------------

def test_a_full_disk_shortens_the_write_that_fills_it_then_raises_enospc(root: Path) -> None:
    with disk.no_space(root, after=10) as fault, open(root / "a.bin", "wb", buffering=0) as fh:
        assert fh.write(b"12345") == 5
        assert fh.write(b"abcdefghij") == 5                # a short write: the disk is full
        with pytest.raises(OSError) as caught:
            fh.write(b"z")
    assert (root / "a.bin").read_bytes() == b"12345abcde"
    assert type(caught.value) is OSError
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value) == "[Errno 28] No space left on device"
    assert (fault.written, fault.fired) == (10, 2)


@pytest.mark.parametrize("write", [
    pytest.param(lambda p: p.write_bytes(b"x" * 64), id="Path.write_bytes"),
    pytest.param(lambda p: p.write_text("x" * 64), id="Path.write_text"),
    pytest.param(lambda p: shutil.copyfile(__file__, p), id="shutil.copyfile/sendfile"),
    pytest.param(lambda p: _os_write(p, lambda fd: os.write(fd, b"x" * 64)), id="os.write"),
    pytest.param(lambda p: _os_write(p, lambda fd: os.pwrite(fd, b"x" * 64, 8)), id="pwrite"),
    pytest.param(lambda p: _os_write(p, lambda fd: os.writev(fd, [b"x" * 32] * 2)),
                 id="writev"),
    pytest.param(lambda p: _temporary(p.parent), id="NamedTemporaryFile"),
])
def test_every_python_write_path_sees_the_full_disk(root: Path,
                                                    write: Callable[[Path], Any]) -> None:
    with disk.no_space(root, after=0), pytest.raises(OSError) as caught:
        write(root / "f")
    assert caught.value.errno == errno.ENOSPC


def _temporary(directory: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=directory, buffering=0) as fh:
        fh.write(b"x" * 64)


def _os_write(path: Path, do: Callable[[int], Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        do(fd)
    finally:
        os.close(fd)


def test_a_full_disk_can_fail_fsync_too(root: Path) -> None:
    with disk.no_space(root, after=2, on=("write", "fsync")), \
            open(root / "a", "wb", buffering=0) as fh:
        fh.write(b"12")
        with pytest.raises(OSError) as caught:
            os.fsync(fh.fileno())
    assert caught.value.errno == errno.ENOSPC


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(after=st.integers(0, 64), sizes=st.lists(st.integers(0, 24), max_size=8))
def test_a_full_disk_keeps_exactly_the_bytes_that_fit(tmp_path: Path, after: int,
                                                      sizes: list[int]) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    landed = b""
    refused: list[tuple[int, int]] = []                    # (errno, bytes landed by then)
    with disk.no_space(root, after=after), open(root / "f", "wb", buffering=0) as fh:
        for i, size in enumerate(sizes):
            chunk = bytes([65 + i]) * size
            try:
                landed += chunk[:fh.write(chunk)]
            except OSError as exc:
                refused.append((exc.errno, len(landed)))
    assert all(r == (errno.ENOSPC, after) for r in refused)
    assert (root / "f").read_bytes() == landed
    assert len(landed) == min(after, sum(sizes))


# -- the directory and nothing else ------------------------------------------------------

def test_paths_outside_the_directory_are_untouched(root: Path, tmp_path: Path) -> None:
    sibling = tmp_path / "data2"                           # shares the root's prefix
    sibling.mkdir()
    (root / "escape").symlink_to(sibling / "target")       # points outside the root
    with disk.no_space(root, after=0) as full, disk.read_only(root), \
            disk.io_error(root, on=OPS_ALL):
        (sibling / "a").write_bytes(b"x" * 4096)
        (tmp_path / "b").write_text("y")
        (root / "escape").write_bytes(b"through the link")  # lands outside: untouched
        os.replace(sibling / "a", sibling / "c")
        with pytest.raises(OSError):
            (root / "inside").write_bytes(b"x")
    assert (sibling / "target").read_bytes() == b"through the link"
    assert (sibling / "c").stat().st_size == 4096
    assert full.calls == 0                                  # read_only refused first


OPS_ALL = disk.OPS


# -- I/O errors, read-only, latency ------------------------------------------------------

def test_io_error_on_the_nth_write_and_on_fsync(root: Path) -> None:
    with disk.io_error(root, trigger=Trigger.nth(2)), \
            open(root / "a", "wb", buffering=0) as fh:
        fh.write(b"one")
        with pytest.raises(OSError) as caught:
            fh.write(b"two")
        fh.write(b"three")
    assert (caught.value.errno, str(caught.value)) == (errno.EIO,
                                                      "[Errno 5] Input/output error")
    assert (root / "a").read_bytes() == b"onethree"
    with disk.io_error(root, on="fsync"), open(root / "a", "ab") as fh, \
            pytest.raises(OSError) as synced:
        os.fsync(fh.fileno())
    assert synced.value.errno == errno.EIO


def test_a_seeded_rate_of_io_errors_replays(root: Path) -> None:
    def pattern(seed: int) -> list[bool]:
        seen = []
        with disk.io_error(root, trigger=Trigger.rate(0.5), seed=seed), \
                open(root / "a", "wb", buffering=0) as fh:
            for _ in range(16):
                try:
                    fh.write(b"x")
                    seen.append(True)
                except OSError:
                    seen.append(False)
        return seen

    assert pattern(5) == pattern(5)
    assert pattern(5) != pattern(6)


def test_read_only_refuses_every_change_but_reads_work(root: Path) -> None:
    (root / "a").write_bytes(b"kept")
    with disk.read_only(root) as fault:
        assert (root / "a").read_bytes() == b"kept"
        errors = []
        for change in (lambda: (root / "b").write_text("new"),
                       lambda: os.replace(root / "a", root / "c"),
                       lambda: os.unlink(root / "a"),
                       lambda: os.mkdir(root / "d"),
                       lambda: os.open(root / "a", os.O_WRONLY)):
            with pytest.raises(OSError) as caught:
                change()
            errors.append((caught.value.errno, caught.value.filename, caught.value.filename2))
    a, c = str(root / "a"), str(root / "c")
    assert errors == [(errno.EROFS, str(root / "b"), None), (errno.EROFS, a, c),
                      (errno.EROFS, a, None), (errno.EROFS, str(root / "d"), None),
                      (errno.EROFS, a, None)]
    assert fault.fired == 5
    assert sorted(os.listdir(root)) == ["a"]


def test_read_only_on_writes_only_lets_files_open_then_fails_their_writes(root: Path) -> None:
    with disk.read_only(root, on="write"), open(root / "a", "wb", buffering=0) as fh, \
            pytest.raises(OSError) as caught:
        fh.write(b"x")
    assert str(caught.value) == "[Errno 30] Read-only file system"


def test_files_opened_before_the_fault_are_not_seen(root: Path) -> None:
    """A limit of the Python I/O layer: a file object opened before any disk fault was
    armed is a plain ``FileIO``, whose writes go straight to the kernel."""
    with open(root / "a", "wb", buffering=0) as fh, disk.read_only(root) as fault:
        fh.write(b"x")
    assert (root / "a").read_bytes() == b"x"
    assert fault.calls == 0


def test_latency_waits_on_the_clock(root: Path) -> None:
    clock = VirtualClock()
    with recording() as history, disk.latency(root, 0.2, clock=clock), \
            open(root / "a", "wb", buffering=0) as fh:
        fh.write(b"x")
        fh.write(b"y")
        os.fsync(fh.fileno())
    assert clock.monotonic() == pytest.approx(0.6)
    fired = history.select("fault.fired", "disk")
    assert [(e.attrs["op"], e.time) for e in fired] == [
        ("write", 0.0), ("write", pytest.approx(0.2)), ("fsync", pytest.approx(0.4))]


def test_events_and_the_originals_come_back(root: Path) -> None:
    with recording() as history, disk.io_error(root) as fault, pytest.raises(OSError):
        (root / "a").write_bytes(b"x")
    assert [e.kind for e in history.select(source="disk")] == [
        "fault.armed", "fault.fired", "fault.disarmed"]
    armed, fired, disarmed = history.select(source="disk")
    assert dict(armed.attrs) == {"family": "disk", "fault": "io_error(on=write)",
                                 "root": str(root)}
    assert (fired.attrs["op"], fired.attrs["path"], fired.attrs["action"]) == (
        "write", str(root / "a"), "io_error")
    assert disarmed.attrs["fired"] == fault.fired == 1
    assert (os.write, os.fsync, os.replace, os.open) == (
        REAL["write"], REAL["fsync"], REAL["replace"], REAL["open"])
    assert open is REAL["io.open"]


@pytest.mark.asyncio
async def test_disk_faults_are_async_context_managers(root: Path) -> None:
    async with disk.io_error(root) as fault:
        with pytest.raises(OSError):
            (root / "a").write_bytes(b"x")
    assert fault.fired == 1


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("build", "message"), [
    (lambda r: disk.no_space(r / "missing"), "root='{r}/missing' is not an existing directory. "
     "Create it first; a disk fault acts only on files under the directory it is given."),
    (lambda r: disk.no_space(r, after=-1), "after=-1 is not a byte count. Pass an integer >= 0."),
    (lambda r: disk.no_space(r, on="rename"), "on='rename': a full disk fails writes and "
     "fsyncs. Pass 'write', 'fsync' or both."),
    (lambda r: disk.io_error(r, on=("write", "seek")), "on=('write', 'seek') names no "
     "operation or unknown ones ['seek']. Pass some of: open, write, fsync, rename, unlink, "
     "mkdir."),
    (lambda r: disk.latency(r, float("nan")), "seconds=nan is not a valid delay. Pass a "
     "finite number >= 0."),
    (lambda r: disk.read_only(None), "root=None is not a directory path. Pass the directory "
     "the fault may act in, e.g. tmp_path / 'data'."),
])
def test_bad_arguments_are_refused_with_the_fix(root: Path, build: Callable[[Path], Any],
                                                message: str) -> None:
    with pytest.raises((ValueError, TypeError)) as caught:
        build(root)
    assert str(caught.value) == message.format(r=root)


@pytest.mark.parametrize(("build", "kind", "message"), [
    (lambda r: disk.io_error(r, on=True), TypeError, "on=True is not an operation or a list "
     "of them. Pass some of: open, write, fsync, rename, unlink, mkdir."),
    (lambda r: disk.read_only(r, on=[["write"]]), TypeError, "on=[['write']] is not an "
     "operation or a list of them. Pass some of: open, write, fsync, rename, unlink, mkdir."),
    (lambda r: disk.no_space(r, clock=True), TypeError, "clock=True is not a clock. Pass an "
     "object with monotonic(), time(), sleep() and asleep() (a VirtualClock or SystemClock "
     "instance), or None."),
    (lambda r: disk.latency(r, ""), TypeError, "seconds='' is not a valid delay. Pass a "
     "finite number >= 0."),
    (lambda r: disk.latency(r, 10**400), ValueError, "seconds=<int of 1329 bits> is not a "
     "valid delay. Pass a finite number >= 0."),
    (lambda r: disk.read_only(b"/tmp"), TypeError, "root=b'/tmp' is not a directory path. "
     "Pass the directory the fault may act in, e.g. tmp_path / 'data'."),
])
def test_wrong_types_are_refused_at_the_call_naming_the_argument(
        root: Path, build: Callable[[Path], Any], kind: type[Exception], message: str) -> None:
    """Regression (issue 14 item 11): on=True and clock=True failed with a TypeError or
    AttributeError not naming the argument, seconds='' in float(), 10**400 with an
    OverflowError."""
    with pytest.raises(kind) as caught:
        build(root)
    assert str(caught.value) == message


# -- restoring exactly -------------------------------------------------------------------------

def test_disarming_puts_back_what_os_and_open_held_when_armed(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (issue 14 item 9): the layer put back the functions it saw at import,
    undoing whatever another tool had installed in ``os`` and ``builtins`` since."""
    real_open, real_fsync = builtins.open, os.fsync

    def tool_open(*args: Any, **kwargs: Any) -> Any:
        return real_open(*args, **kwargs)

    def tool_fsync(fd: int) -> None:
        real_fsync(fd)

    monkeypatch.setattr(builtins, "open", tool_open)
    monkeypatch.setattr(io, "open", tool_open)
    monkeypatch.setattr(os, "fsync", tool_fsync)
    namespaces = (os, builtins, io)
    before = [dict(vars(owner)) for owner in namespaces]
    with disk.io_error(root, on="fsync"), open(root / "f", "wb") as fh, \
            pytest.raises(OSError):
        os.fsync(fh.fileno())
    assert [dict(vars(owner)) for owner in namespaces] == before
    assert (builtins.open, io.open, os.fsync) == (tool_open, tool_open, tool_fsync)
