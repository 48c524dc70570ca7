"""End to end: a cuda_spike past 90% unloads the LRU model, then usage recovers."""

from __future__ import annotations

import pytest

from faults.cuda import cuda_spike, fake_gpu
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import recording
from pytest_resilience.memory import GPUMonitor, ModelCache, PressureLevel


def test_spike_unloads_lru_model_and_recovers() -> None:
    torch = pytest.importorskip("torch", reason="models are torch tensors")
    clock = VirtualClock()
    real = torch.cuda.is_available()
    with recording() as history, fake_gpu(total=10_000_000) as gpu:
        cache = ModelCache(clock=clock, on_evict=lambda key, _: gpu.release(key))

        def load(key: object) -> object:
            tensor = torch.zeros(375_000)  # 1.5 MB: 15% of the device
            gpu.allocate(str(key), tensor.untyped_storage().nbytes())
            return tensor

        for key in ("m1", "m2", "m3"):
            cache.get(key, load)
        monitor = GPUMonitor(cache=cache, clock=clock)
        with cuda_spike(0, 4_800_000, duration=5.0, clock=clock):
            assert monitor.check() == {0: PressureLevel.WARNING}
            assert cache.keys() == ["m2", "m3"]
            clock.advance(5.0)
            assert monitor.check() == {0: PressureLevel.NORMAL}
    assert torch.cuda.is_available() is real
    assert cache.stats().evictions == {"gpu": 1}
    kinds = [(e.kind, e.attrs.get("level") or e.attrs.get("cause")) for e in history
             if e.kind in ("gpu.usage", "cache.evict")]
    assert kinds == [("gpu.usage", "critical"), ("cache.evict", "gpu"),
                     ("gpu.usage", "warning"), ("gpu.usage", "normal")]
