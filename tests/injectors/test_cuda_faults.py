"""faults.cuda: fake GPU restore, spikes, real OutOfMemoryError, real=True skip."""

from __future__ import annotations

import pytest

from faults.cuda import cuda_oom, cuda_spike, fake_gpu
from pytest_resilience.memory import GPUMonitor
from pytest_resilience.memory._gpu import read_gpu_devices


def test_no_gpu_reported_cleanly_and_fake_is_undone() -> None:
    real = bool(read_gpu_devices())  # a lent GPU machine has one; CI has none
    assert bool(GPUMonitor().check()) is real
    with fake_gpu(devices=2, total="8GiB"):
        assert [d.total for d in GPUMonitor().devices()] == [8 * 2**30] * 2
    monitor = GPUMonitor()
    monitor.check()
    assert monitor.status()["available"] is real


def test_torch_is_restored_after_fake_gpu() -> None:
    torch = pytest.importorskip("torch", reason="patches torch.cuda")
    real = torch.cuda.is_available()
    with fake_gpu(total="1GiB"), cuda_spike(0, "256MiB"):
        assert torch.cuda.is_available()
        assert torch.cuda.mem_get_info(0) == (768 * 2**20, 2**30)
    assert torch.cuda.is_available() is real


def test_cuda_oom_raises_real_torch_error_at_nth_allocation() -> None:
    torch = pytest.importorskip("torch", reason="cuda_oom needs torch")
    with cuda_oom(nth=2) as budget:
        torch.ones(4)
        with pytest.raises(torch.cuda.OutOfMemoryError):
            torch.zeros(4)
    assert budget.raised


def test_real_spike_needs_cuda() -> None:
    torch = pytest.importorskip("torch", reason="real spike needs torch")
    if not torch.cuda.is_available():
        pytest.skip("CUDA unavailable: real=True allocates real GPU memory")
    with cuda_spike(0, "64MiB", real=True):
        assert torch.cuda.memory_allocated(0) >= 64 * 2**20
