"""faults.memory: oom_at and real_oom in a child under RLIMIT_AS; fixtures via pytester."""

from __future__ import annotations

import os
import signal

import pytest

import faults
from faults.memory import oom_at, real_oom


def _grab(n: int) -> int:
    return len(bytearray(n))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_oom_at_failpoint_raises_memory_error_on_second_call() -> None:
    with oom_at("model.load", trigger=faults.Trigger.nth(2)) as plan:
        faults.failpoint("model.load")
        with pytest.raises(MemoryError):
            faults.failpoint("model.load")
    assert plan.fired("model.load") == 1


def test_real_oom_outcomes() -> None:
    assert real_oom(64 * 2**20, _grab, 1024).outcome == "survived"
    assert real_oom(64 * 2**20, _grab, 512 * 2**20).outcome == "memory_error"
    killed = real_oom(64 * 2**20, _die)
    assert (killed.outcome, killed.returncode) == ("killed", -9)


def test_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import psutil, pytest
        def test_p(memory_pressure):
            memory_pressure(96)
            assert psutil.virtual_memory().percent > 95
        @pytest.mark.fake_gpu(total="2GiB")
        def test_g(fake_gpu):
            assert fake_gpu.device(0).total == 2 * 2**30
        """
    )
    pytester.runpytest("-p", "resilience").assert_outcomes(passed=2)
