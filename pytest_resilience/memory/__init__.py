"""Memory components: host pressure monitor, GPU monitor and the model cache.

Nothing here imports torch or NVML at import time.
"""

from __future__ import annotations

from pytest_resilience.memory._cache import CacheStats, ModelCache, ModelLoadError
from pytest_resilience.memory._gpu import DeviceUsage, GPUMonitor, GPUPressure, read_gpu_devices
from pytest_resilience.memory._levels import PressureLevel
from pytest_resilience.memory._pressure import Evictable, MemoryPressureMonitor, PressureChange
from pytest_resilience.memory._reading import MemoryReading, read_system_memory
from pytest_resilience.memory._sizing import measure_bytes

__all__ = [
    "CacheStats",
    "DeviceUsage",
    "Evictable",
    "GPUMonitor",
    "GPUPressure",
    "MemoryPressureMonitor",
    "MemoryReading",
    "ModelCache",
    "ModelLoadError",
    "PressureChange",
    "PressureLevel",
    "measure_bytes",
    "read_gpu_devices",
    "read_system_memory",
]
