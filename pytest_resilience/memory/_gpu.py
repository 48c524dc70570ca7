"""``GPUMonitor``: per-device GPU memory from NVML or torch.cuda, with LRU unloading."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._events import emit
from pytest_resilience.kinds import GPU_USAGE
from pytest_resilience.memory._levels import PressureLevel, check_fraction, next_level

__all__ = ["DeviceUsage", "GPUMonitor", "GPUPressure", "read_gpu_devices"]

# NVML errors that mean "there is no GPU here" rather than "something broke".
_NO_GPU_ERRORS = ("NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded",
                  "NVMLError_Uninitialized", "NVMLError_NoPermission")


@dataclass(frozen=True, slots=True)
class DeviceUsage:
    """One device's memory: bytes used of total, and which API reported it."""

    index: int
    name: str
    used: int
    total: int
    source: str

    @property
    def fraction(self) -> float:
        """``used / total``."""
        return self.used / self.total if self.total > 0 else 0.0


@dataclass(frozen=True, slots=True)
class GPUPressure:
    """What a callback receives when a device's level changes."""

    device: int
    level: PressureLevel
    previous: PressureLevel
    usage: DeviceUsage


class _LRUUnloader(Protocol):
    name: str

    def evict_lru(self, *, cause: str = ...) -> object: ...

    def __len__(self) -> int: ...


def _read_nvml() -> list[DeviceUsage] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the deprecated `pynvml` shim
            import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        if type(exc).__name__ in _NO_GPU_ERRORS:
            return None
        raise
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                info = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
            except pynvml.NVMLError_FunctionNotFound:
                info = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            devices.append(DeviceUsage(index, name, int(info.used), int(info.total), "nvml"))
        return devices
    finally:
        pynvml.nvmlShutdown()


def _read_torch() -> list[DeviceUsage] | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    devices = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        devices.append(DeviceUsage(index, str(torch.cuda.get_device_name(index)),
                                   int(total - free), int(total), "torch"))
    return devices


def read_gpu_devices() -> list[DeviceUsage]:
    """Every device's usage from NVML, else from an imported torch; ``[]`` means no GPU."""
    devices = _read_nvml()
    if devices is None:
        devices = _read_torch()
    return devices or []


class GPUMonitor:
    """Watches GPU memory per device; on CRITICAL, unloads LRU models until below WARNING.

    Levels are NORMAL, WARNING (``warning`` fraction used) and CRITICAL (``critical``),
    left only ``hysteresis`` below their threshold. Each change emits ``gpu.usage``;
    ``track(model, nbytes)`` keeps per-model accounting. On a machine without a GPU,
    ``check()`` returns ``{}`` and ``status()["available"]`` is False.
    """

    def __init__(
        self,
        *,
        warning: float = 0.80,
        critical: float = 0.90,
        hysteresis: float = 0.05,
        cache: _LRUUnloader | None = None,
        name: str = "gpu",
        reader: Callable[[], list[DeviceUsage]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.warning = check_fraction(warning, "warning")
        self.critical = check_fraction(critical, "critical")
        if not self.warning < self.critical:
            raise ValueError(
                f"warning={warning!r} is not below critical={critical!r}. Pass "
                "warning < critical, e.g. 0.80 and 0.90."
            )
        self.hysteresis = _validate.number(
            hysteresis, "hysteresis", low=0.0, high=self.warning, high_open=True,
            what="in range", accepted=f"a fraction >= 0 and below warning ({self.warning!r})")
        if cache is not None and not callable(getattr(cache, "evict_lru", None)):
            raise TypeError(f"cache={_validate.show(cache)} cannot unload models. Pass a "
                            "ModelCache (anything with evict_lru()), or None.")
        _validate.callable_or_none(reader, "reader", accepted="a function returning a list "
                                   "of DeviceUsage, or None for NVML/torch")
        self.cache = cache
        self.name = name
        self.clock: Clock = _validate.clock(clock)
        self._reader = reader if reader is not None else read_gpu_devices
        self._lock = threading.RLock()
        self._levels: dict[int, PressureLevel] = {}
        self._last: list[DeviceUsage] = []
        self._models: dict[str, tuple[int, int]] = {}
        self._callbacks: list[Callable[[GPUPressure], None]] = []
        self._unloaded = 0

    # -- accounting ------------------------------------------------------------------
    def track(self, model: str, nbytes: int, *, device: int = 0) -> None:
        """Attribute ``nbytes`` on ``device`` to ``model``."""
        with self._lock:
            self._models[model] = (device, int(nbytes))

    def untrack(self, model: str) -> None:
        """Forget ``model``'s bytes (after unloading it)."""
        with self._lock:
            self._models.pop(model, None)

    def models(self, device: int | None = None) -> dict[str, int]:
        """Bytes per tracked model, optionally only on ``device``."""
        with self._lock:
            return {m: n for m, (d, n) in self._models.items() if device in (None, d)}

    def on_change(self, callback: Callable[[GPUPressure], None]) -> Callable[[], None]:
        """Call ``callback(GPUPressure)`` on every level change; returns a remover."""
        with self._lock:
            self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    # -- checking --------------------------------------------------------------------
    def devices(self) -> list[DeviceUsage]:
        """A fresh reading of every device (``[]`` without a GPU)."""
        return list(self._reader())

    @property
    def available(self) -> bool:
        """Whether the last reading found a GPU."""
        return bool(self._last)

    def check(self) -> dict[int, PressureLevel]:
        """Read every device, update levels, unload LRU models on CRITICAL."""
        levels: dict[int, PressureLevel] = {}
        for usage in self._update(self.devices()):
            levels[usage.index] = self._levels[usage.index]
            if levels[usage.index] >= PressureLevel.CRITICAL and self.cache is not None:
                levels[usage.index] = self._unload(usage)
        return levels

    async def acheck(self) -> dict[int, PressureLevel]:
        """``check()`` in a worker thread (NVML calls block briefly)."""
        return await asyncio.to_thread(self.check)

    def level(self, device: int = 0) -> PressureLevel:
        """The level of ``device`` after the last check."""
        return self._levels.get(device, PressureLevel.NORMAL)

    def _update(self, devices: list[DeviceUsage]) -> list[DeviceUsage]:
        changes: list[GPUPressure] = []
        with self._lock:
            self._last = devices
            for usage in devices:
                previous = self._levels.get(usage.index, PressureLevel.NORMAL)
                level = next_level(previous, usage.fraction, (self.warning, self.critical),
                                   self.hysteresis)
                self._levels[usage.index] = level
                if level != previous:
                    changes.append(GPUPressure(usage.index, level, previous, usage))
            callbacks = tuple(self._callbacks)
        for change in changes:
            emit(GPU_USAGE, self.name, self.clock, device=change.device,
                 used=change.usage.used, total=change.usage.total, level=change.level.label)
            for callback in callbacks:
                callback(change)
        return devices

    def _unload(self, usage: DeviceUsage) -> PressureLevel:
        assert self.cache is not None
        current = usage
        for _ in range(len(self.cache)):
            if current.fraction < self.warning:
                break
            key = self.cache.evict_lru(cause="gpu")
            if key is None:
                break
            self.untrack(str(key))
            self._unloaded += 1
            fresh = [d for d in self._update(self.devices()) if d.index == usage.index]
            if not fresh:
                break
            current = fresh[0]
        return self.level(usage.index)

    # -- reporting -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Devices, levels, tracked models and unload count as plain builtins."""
        with self._lock:
            return {
                "name": self.name,
                "available": bool(self._last),
                "reason": None if self._last else "no GPU",
                "devices": [{**asdict(d), "level": self.level(d.index).label}
                            for d in self._last],
                "models": {m: {"device": d, "bytes": n} for m, (d, n) in self._models.items()},
                "unloaded": self._unloaded,
            }

    def status_json(self) -> str:
        """``status()`` as JSON."""
        return json.dumps(self.status())

    def __repr__(self) -> str:
        return f"GPUMonitor(name={self.name!r}, devices={len(self._last)})"
