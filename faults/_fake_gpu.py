"""The simulated GPU behind ``faults.cuda``: device state, a fake NVML library, torch patches."""

from __future__ import annotations

import ctypes
import math
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_resilience import _validate
from pytest_resilience._clock import Clock

__all__ = ["FakeDevice", "FakeNvmlLib", "oom_error", "parse_bytes", "torch_module", "torch_patches"]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
#: The most devices one fake GPU simulates.
MAX_DEVICES = 1024
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(value: int | str, name: str) -> int:
    """``80 * 2**30`` or ``"80GiB"`` (also kB/MB/GB, KiB/MiB/TiB) as a byte count >= 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    size = math.inf
    if match is not None and match.group(2).lower() in _UNITS:
        size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not size < math.inf:
        raise (ValueError if isinstance(value, str | int) else TypeError)(
            f"{name}={_validate.show(value)} is not a size. Pass bytes as an int >= 0 or a "
            "string such as '80GiB', '512MiB' or '4GB'."
        )
    return int(size)


@dataclass
class _Spike:
    nbytes: int
    until: float | None
    clock: Clock


@dataclass
class FakeDevice:
    """One simulated device: named allocations plus active spikes, of ``total`` bytes."""

    index: int
    name: str
    total: int
    allocations: dict[str, int] = field(default_factory=dict)
    spikes: list[_Spike] = field(default_factory=list)
    peak: int = 0
    empty_cache_calls: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def used(self) -> int:
        """Bytes in use now (spikes whose duration has passed on their clock no longer count)."""
        with self.lock:
            spikes = sum(s.nbytes for s in self.spikes
                         if s.until is None or s.clock.monotonic() < s.until)
            used = min(self.total, sum(self.allocations.values()) + spikes)
            self.peak = max(self.peak, used)
            return used

    @property
    def free(self) -> int:
        """``total - used``."""
        return self.total - self.used

    def allocate(self, key: str, nbytes: int) -> None:
        """Hold ``nbytes`` under ``key``; raises torch's ``OutOfMemoryError`` past ``total``."""
        with self.lock:
            free = self.free
            if nbytes > free:
                raise oom_error(nbytes, self.index, self.total, free)
            self.allocations[key] = self.allocations.get(key, 0) + nbytes
            self.peak = max(self.peak, self.used)

    def release(self, key: str) -> int:
        """Free what ``key`` holds; returns the bytes freed (0 if it held nothing)."""
        with self.lock:
            return self.allocations.pop(key, 0)


def oom_error(nbytes: int, device: int, total: int | None, free: int | None) -> BaseException:
    """torch's ``OutOfMemoryError`` with CUDA's wording (``MemoryError`` without torch).

    ``total`` None (no simulated device) leaves the capacity out; ``free`` None as well
    (an ``nth`` trigger) says nothing about free memory.
    """
    if total is not None:
        state = (f"GPU {device} has a total capacity of {total / 2**30:.2f} GiB of which "
                 f"{(free or 0) / 2**20:.2f} MiB is free. ")
    elif free is not None:
        state = f"GPU {device} has {free / 2**20:.2f} MiB left of the injected budget. "
    else:
        state = ""
    message = (f"CUDA out of memory. Tried to allocate {nbytes / 2**20:.2f} MiB. {state}"
               "(simulated by faults.cuda)")
    try:
        import torch
    except ImportError:
        return MemoryError(message)
    return torch.cuda.OutOfMemoryError(message)


class FakeNvmlLib:
    """Stands in for ``libnvidia-ml.so``: methods named after the C symbols pynvml calls."""

    def __init__(self, devices: list[FakeDevice]) -> None:
        self.devices = devices

    def _device(self, handle: Any) -> FakeDevice | None:
        index = getattr(handle, "_fake_index", None)
        return self.devices[index] if isinstance(index, int) else None

    def nvmlInitWithFlags(self, flags: Any) -> int:
        return 0

    def nvmlInit_v2(self) -> int:
        return 0

    def nvmlShutdown(self) -> int:
        return 0

    def nvmlDeviceGetCount_v2(self, count_ref: Any) -> int:
        count_ref._obj.value = len(self.devices)
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, index: Any, handle_ref: Any) -> int:
        if not 0 <= index.value < len(self.devices):
            return 2  # NVML_ERROR_INVALID_ARGUMENT
        handle_ref._obj._fake_index = index.value
        return 0

    def nvmlDeviceGetMemoryInfo(self, handle: Any, ref: Any) -> int:
        device = self._device(handle)
        if device is None:
            return 2
        memory = ref._obj
        memory.total, memory.used = device.total, device.used
        memory.free = memory.total - memory.used
        return 0

    def nvmlDeviceGetMemoryInfo_v2(self, handle: Any, ref: Any) -> int:
        status = self.nvmlDeviceGetMemoryInfo(handle, ref)
        if status == 0:
            ref._obj.reserved = 0
        return status

    def nvmlDeviceGetName(self, handle: Any, buffer: Any, size: Any) -> int:
        device = self._device(handle)
        if device is None:
            return 2
        name = device.name.encode()[: int(size.value) - 1] + b"\0"
        ctypes.memmove(buffer, name, len(name))
        return 0

    def nvmlErrorString(self, code: Any) -> bytes:
        return b"fake NVML error"


def _index(device: Any, count: int) -> int:
    if device is None:
        return 0
    if isinstance(device, int):
        index = device
    elif isinstance(device, str):
        index = int(device.rsplit(":", 1)[1]) if ":" in device else 0
    else:
        index = getattr(device, "index", None) or 0
    if not 0 <= index < count:
        raise RuntimeError(f"CUDA error: invalid device ordinal {index} (fake GPU has {count})")
    return index


def torch_patches(devices: list[FakeDevice]) -> dict[str, Callable[..., Any]]:
    """The ``torch.cuda`` memory API answered from ``devices``."""

    def dev(device: Any = None) -> FakeDevice:
        return devices[_index(device, len(devices))]

    def mem_get_info(device: Any = None) -> tuple[int, int]:
        d = dev(device)
        return d.free, d.total

    def memory_stats(device: Any = None) -> dict[str, int]:
        d = dev(device)
        used = d.used
        return {"allocated_bytes.all.current": used, "allocated_bytes.all.peak": d.peak,
                "reserved_bytes.all.current": used, "num_ooms": 0}

    def reset_peak_memory_stats(device: Any = None) -> None:
        d = dev(device)
        d.peak = d.used

    def empty_cache() -> None:
        for d in devices:
            d.empty_cache_calls += 1

    return {
        "is_available": lambda: True,
        "device_count": lambda: len(devices),
        "mem_get_info": mem_get_info,
        "memory_allocated": lambda device=None: dev(device).used,
        "memory_reserved": lambda device=None: dev(device).used,
        "max_memory_allocated": lambda device=None: max(dev(device).peak, dev(device).used),
        "memory_stats": memory_stats,
        "reset_peak_memory_stats": reset_peak_memory_stats,
        "empty_cache": empty_cache,
        "get_device_name": lambda device=None: dev(device).name,
    }


def torch_module() -> Any:
    """torch, imported, or None when it is not installed."""
    if "torch" in sys.modules:
        return sys.modules["torch"]
    try:
        import torch
    except ImportError:
        return None
    return torch
