"""CUDA faults: a simulated GPU, memory spikes and ``torch.cuda.OutOfMemoryError``.

``fake_gpu()`` installs simulated devices behind NVML (``pynvml`` from nvidia-ml-py, at
its ctypes boundary, so the real wrappers run) and behind ``torch.cuda``'s memory API on
CPU-only torch, for the block only. ``cuda_spike`` raises a device's usage;
``cuda_oom`` makes torch allocations raise a real ``torch.cuda.OutOfMemoryError``.
"""

from __future__ import annotations

from faults._cuda import (
    FakeDevice,
    FakeGPU,
    OOMBudget,
    cuda_oom,
    cuda_spike,
    fake_gpu,
)

__all__ = [
    "FakeDevice",
    "FakeGPU",
    "OOMBudget",
    "cuda_oom",
    "cuda_spike",
    "fake_gpu",
]
