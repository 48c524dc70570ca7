"""On a real CUDA device: NVML and torch readings, real spikes, LRU unloading, real OOM.

Every test here skips with a reason on a machine without CUDA (CI has none); they run
on a lent GPU machine (README: "Checks on a real GPU").
"""

from __future__ import annotations

from typing import Any

import pytest

from faults.cuda import cuda_oom, cuda_spike, fake_gpu
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import recording
from pytest_resilience.memory import GPUMonitor, ModelCache, PressureLevel
from pytest_resilience.memory._gpu import DeviceUsage, read_gpu_devices

GiB = 2**30
# What other work on the device (the CUDA context, cuBLAS workspaces) may move NVML's
# "used" by between two readings of these tests.
SLACK = 256 * 2**20


@pytest.fixture
def torch() -> Any:
    """torch with a usable CUDA device and an initialised context on device 0."""
    torch = pytest.importorskip("torch", reason="real GPU checks use torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: real-GPU checks run on a lent GPU machine")
    torch.ones(1, device="cuda:0").sum().item()  # the context's own memory, before any reading
    torch.cuda.empty_cache()
    return torch


def _nvml(index: int = 0) -> DeviceUsage:
    devices = read_gpu_devices()
    assert devices, "NVML found no device although torch.cuda did"
    return devices[index]


def test_nvml_and_torch_agree_on_the_devices(torch: Any) -> None:
    devices = read_gpu_devices()
    assert [d.source for d in devices] == ["nvml"] * torch.cuda.device_count()
    for device in devices:
        free, total = torch.cuda.mem_get_info(device.index)
        assert device.name == torch.cuda.get_device_name(device.index)
        assert abs(device.total - total) <= 0.02 * total
        assert abs(device.used - (total - free)) <= GiB  # NVML counts driver reservations too


def test_real_spike_is_seen_by_nvml_and_given_back(torch: Any) -> None:
    before = _nvml()
    allocated = torch.cuda.memory_allocated(0)
    with cuda_spike(0, "2GiB", real=True):
        during = _nvml()
        assert torch.cuda.memory_allocated(0) - allocated >= 2 * GiB
    after = _nvml()
    assert during.used - before.used >= 2 * GiB - SLACK
    assert abs(after.used - before.used) <= SLACK
    assert torch.cuda.memory_allocated(0) == allocated


def test_real_spike_over_critical_unloads_lru_models_until_below_warning(torch: Any) -> None:
    clock = VirtualClock()
    cache = ModelCache(clock=clock)

    def load(key: object) -> object:
        return torch.ones(GiB // 4, dtype=torch.float32, device="cuda:0")  # 1 GiB

    base = _nvml()
    for key in ("m1", "m2", "m3"):
        cache.get(key, load)
    assert cache.tracked_bytes() == 3 * GiB
    loaded = _nvml().used
    total = base.total
    # Thresholds around this device's own usage: the 2.5 GiB spike takes it past
    # critical; unloading m1 is not enough to get under warning, unloading m2 is.
    monitor = GPUMonitor(cache=cache, clock=clock, hysteresis=0.0,
                         warning=(loaded + 0.7 * GiB) / total,
                         critical=(loaded + 2.0 * GiB) / total)
    assert monitor.check() == {0: PressureLevel.NORMAL}
    with recording() as history, cuda_spike(0, int(2.5 * GiB), real=True):
        assert monitor.check() == {0: PressureLevel.NORMAL}
        assert cache.keys() == ["m3"]
        assert _nvml().used - loaded <= 0.5 * GiB + SLACK  # the unloads freed real memory
    assert cache.stats().evictions == {"gpu": 2}
    changes = [(e.kind, e.attrs.get("level") or e.attrs.get("key")) for e in history
               if e.kind in ("gpu.usage", "cache.evict")]
    assert changes == [("gpu.usage", "critical"), ("cache.evict", "m1"),
                       ("gpu.usage", "warning"), ("cache.evict", "m2"),
                       ("gpu.usage", "normal")]
    cache.clear()
    assert abs(_nvml().used - base.used) <= SLACK


def test_fake_gpu_over_a_real_one_is_fully_undone(torch: Any) -> None:
    real = read_gpu_devices()
    real_info = torch.cuda.mem_get_info(0)
    with fake_gpu(total="8GiB", used="1GiB"):
        fake = read_gpu_devices()
        assert [(d.name, d.used, d.total, d.source) for d in fake] == [
            ("Fake GPU", GiB, 8 * GiB, "nvml")]
        assert torch.cuda.mem_get_info(0) == (7 * GiB, 8 * GiB)
        with pytest.raises(RuntimeError, match="no fake_gpu"):
            cuda_spike(0, "1GiB", real=True).__enter__()
    after = read_gpu_devices()
    assert [(d.name, d.total) for d in after] == [(d.name, d.total) for d in real]
    assert torch.cuda.mem_get_info(0)[1] == real_info[1]
    assert torch.cuda.is_available()


def test_injected_oom_is_the_error_a_real_oom_raises(torch: Any) -> None:
    total = torch.cuda.mem_get_info(0)[1]
    with pytest.raises(torch.cuda.OutOfMemoryError) as real:
        torch.empty(2 * total, dtype=torch.uint8, device="cuda:0")
    with cuda_oom(nth=2) as budget:
        kept = torch.ones(1024, device="cuda:0")
        with pytest.raises(torch.cuda.OutOfMemoryError) as injected:
            torch.zeros(1024, device="cuda:0")
    assert budget.raised
    assert type(injected.value) is type(real.value)
    prefix = "CUDA out of memory. Tried to allocate "
    assert str(real.value).startswith(prefix)
    assert str(injected.value).startswith(prefix)
    # Neither the real nor the injected OOM leaves the device unusable.
    assert float((kept + torch.ones(1024, device="cuda:0")).sum()) == 2048.0
