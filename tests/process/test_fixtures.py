"""The ``subprocess_faults`` and ``disk_faults`` fixtures, run through pytester."""

from __future__ import annotations

import pytest

# Imported here so that every in-process pytester run shares one copy of each module
# (pytester forgets modules first imported during a run, and these patch process state).
import faults.disk
import faults.subprocess  # noqa: F401


def test_subprocess_faults_use_the_tests_clock_history_and_are_undone(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import subprocess
        import pytest
        from faults import Trigger

        def test_hang_times_out_on_the_virtual_clock(subprocess_faults, clock, history):
            fault = subprocess_faults.hang("model-cli", trigger=Trigger.first(1))
            with pytest.raises(subprocess.TimeoutExpired):
                subprocess.run(["model-cli", "load"], timeout=30, check=False)
            assert clock.monotonic() == 30
            with pytest.raises(FileNotFoundError):   # the 2nd call runs for real: missing
                subprocess.run(["model-cli", "load"], check=False)
            assert (fault.calls, fault.fired) == (2, 1)
            kinds = [e.kind for e in history.select(source="subprocess")]
            assert kinds == ["fault.armed", "fault.fired"]

        def test_a_failing_test_is_undone_too(subprocess_faults):
            subprocess_faults.exits("sh", 3)
            subprocess_faults.slow_start("sh", 1.0)
            raise AssertionError("boom")

        def test_after():
            assert subprocess.run(["sh", "-c", "exit 0"], check=False).returncode == 0
        """
    )
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*faults fired: 1 (subprocess 1)*"])


def test_disk_faults_act_under_the_named_directory_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import errno, os
        import pytest

        def test_full_disk(disk_faults, tmp_path, clock, history):
            data = tmp_path / "data"
            data.mkdir()
            disk_faults.no_space(data, after=4)
            disk_faults.latency(data, 0.25, on="fsync")
            with pytest.raises(OSError) as caught:
                (data / "a.bin").write_bytes(b"123456")
            assert caught.value.errno == errno.ENOSPC
            (tmp_path / "outside.bin").write_bytes(b"123456")
            with open(data / "b.bin", "wb", buffering=0) as fh:
                with pytest.raises(OSError):
                    fh.write(b"x")
                os.fsync(fh.fileno())
            assert clock.monotonic() == 0.25
            kinds = {e.attrs["fault"] for e in history.select("fault.fired", "disk")}
            assert kinds == {"no_space(after=4)", "latency(0.25s, on=fsync)"}

        def test_after(tmp_path):
            (tmp_path / "c.bin").write_bytes(b"123456")
        """
    )
    result = pytester.runpytest("-p", "resilience")
    result.assert_outcomes(passed=2)
    # the short write (4 of 6 bytes), ENOSPC for the rest, ENOSPC for b"x", one delay
    result.stdout.fnmatch_lines(["*faults fired: 4 (disk 4)*"])
