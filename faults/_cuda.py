"""CUDA faults: a simulated GPU, memory spikes and ``torch.cuda.OutOfMemoryError``.

``fake_gpu()`` installs simulated devices behind NVML (``pynvml`` from nvidia-ml-py, at
its ctypes boundary, so the real wrappers run) and behind ``torch.cuda``'s memory API on
CPU-only torch, for the block only. ``cuda_spike`` raises a device's usage;
``cuda_oom`` makes torch allocations raise a real ``torch.cuda.OutOfMemoryError``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from faults._fake_gpu import (
    MAX_DEVICES,
    FakeDevice,
    FakeNvmlLib,
    _Spike,
    oom_error,
    parse_bytes,
    torch_module,
    torch_patches,
)
from pytest_resilience import Clock, History, emit, validate
from pytest_resilience.kinds import CUDA_SIMULATED, FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED
from pytest_resilience.patching import patch

__all__ = ["FakeDevice", "FakeGPU", "OOMBudget", "cuda_oom", "cuda_spike", "fake_gpu"]

_ACTIVE: FakeGPU | None = None
_ACTIVE_LOCK = threading.Lock()


class FakeGPU:
    """The simulated devices of an active ``fake_gpu`` block."""

    def __init__(self, devices: list[FakeDevice], *, nvml: bool, torch: bool) -> None:
        self.devices = devices
        self.patched_nvml = nvml
        self.patched_torch = torch

    def device(self, index: int = 0) -> FakeDevice:
        """Device ``index``."""
        return self.devices[index]

    def allocate(self, key: str, nbytes: int | str, *, device: int = 0) -> None:
        """Hold ``nbytes`` on ``device`` under ``key`` (raises ``OutOfMemoryError`` when full)."""
        self.devices[device].allocate(key, parse_bytes(nbytes, "nbytes"))

    def release(self, key: str, *, device: int = 0) -> int:
        """Free what ``key`` holds on ``device``; returns the bytes freed."""
        return self.devices[device].release(key)

    def __repr__(self) -> str:
        return f"FakeGPU({[(d.name, d.used, d.total) for d in self.devices]})"


def active_gpu() -> FakeGPU | None:
    """The fake GPU installed now, if any."""
    return _ACTIVE


def _patch_nvml(stack: ExitStack, lib: FakeNvmlLib) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import pynvml
    except ImportError:
        return False
    cache = pynvml._nvmlGetFunctionPointer_cache
    saved_cache = dict(cache)

    def restore_cache() -> None:
        cache.clear()
        cache.update(saved_cache)

    stack.callback(restore_cache)
    stack.callback(patch(pynvml, "_nvmlLib_refcount", pynvml._nvmlLib_refcount).restore)
    stack.callback(patch(pynvml, "nvmlLib", lib).restore)
    cache.clear()
    return True


def _patch_torch(stack: ExitStack, devices: list[FakeDevice]) -> bool:
    torch = torch_module()
    if torch is None:
        return False
    patches = torch_patches(devices)
    for module in (torch.cuda, torch.cuda.memory):
        for attribute, replacement in patches.items():
            if hasattr(module, attribute):
                stack.callback(patch(module, attribute, replacement).restore)
    return True


@contextmanager
def fake_gpu(
    devices: int = 1,
    total: int | str = "80GiB",
    *,
    name: str = "Fake GPU",
    used: int | str = 0,
    clock: Clock | None = None,
    history: History | None = None,
) -> Iterator[FakeGPU]:
    """Simulate ``devices`` GPUs of ``total`` bytes each (``used`` already taken) for the block.

    NVML answers ``nvmlDeviceGetCount``, ``nvmlDeviceGetHandleByIndex``,
    ``nvmlDeviceGetMemoryInfo`` (v1 and v2) and ``nvmlDeviceGetName``; ``torch.cuda``
    answers ``is_available``, ``device_count``, ``mem_get_info``, ``memory_allocated``,
    ``memory_reserved``, ``max_memory_allocated``, ``memory_stats``,
    ``reset_peak_memory_stats``, ``empty_cache`` and ``get_device_name``. Everything is
    restored at exit. One fake GPU at a time.
    """
    global _ACTIVE  # noqa: PLW0603 - the one installed fake, cleared at exit
    devices = validate.count(devices, "devices", high=MAX_DEVICES, what="a device count")
    history = validate.history(history)
    size = parse_bytes(total, "total")
    taken = parse_bytes(used, "used")
    if size == 0 or taken > size:
        raise ValueError(f"total={validate.show(total)}, used={validate.show(used)}: need 0 "
                         f"< used <= total. "
                         "Pass a positive total and a smaller used.")
    fakes = [FakeDevice(i, f"{name} {i}" if devices > 1 else name, size)
             for i in range(devices)]
    for fake in fakes:
        if taken:
            fake.allocations["<baseline>"] = taken
    with _ACTIVE_LOCK:
        if _ACTIVE is not None:
            raise RuntimeError("A fake GPU is already installed. Nest cuda_spike/cuda_oom "
                               "inside it instead of a second fake_gpu().")
        _ACTIVE = gpu = FakeGPU(fakes, nvml=False, torch=False)
    with ExitStack() as stack:
        try:
            gpu.patched_nvml = _patch_nvml(stack, FakeNvmlLib(fakes))
            gpu.patched_torch = _patch_torch(stack, fakes)
            emit(CUDA_SIMULATED, "fake_gpu", clock, history=history, event="installed",
                 devices=devices, total=size)
            yield gpu
        finally:
            stack.close()
            with _ACTIVE_LOCK:
                _ACTIVE = None
            emit(CUDA_SIMULATED, "fake_gpu", clock, history=history, event="removed",
                 devices=devices)


@contextmanager
def cuda_spike(
    device: int = 0,
    size: int | str = "1GiB",
    duration: float | None = None,
    *,
    real: bool = False,
    clock: Clock | None = None,
    history: History | None = None,
) -> Iterator[None]:
    """Raise ``device``'s memory use by ``size`` for the block (or ``duration`` seconds of
    ``clock`` within it).

    On a fake GPU the spike is simulated. With ``real=True`` it allocates real CUDA
    memory with torch and frees it (``del`` + ``empty_cache``) at exit.
    """
    nbytes = parse_bytes(size, "size")
    clk: Clock = validate.clock(clock)
    history = validate.history(history)
    if duration is not None:
        duration = validate.seconds(duration, "duration", positive=True,
                                     what="a positive duration",
                                     accepted="seconds > 0 or None (until the block ends)")
    if real:
        with _real_spike(device, nbytes):
            emit(FAULT_ARMED, "cuda_spike", clock, history=history, family="cuda", device=device,
                 bytes=nbytes, real=True)
            emit(FAULT_FIRED, "cuda_spike", clock, history=history, family="cuda",
                 action="spike", trigger="always", call=1, device=device, bytes=nbytes)
            try:
                yield
            finally:
                emit(FAULT_DISARMED, "cuda_spike", clock, history=history, family="cuda",
                 device=device)
        return
    gpu = _ACTIVE
    if gpu is None:
        raise RuntimeError("cuda_spike needs a GPU: enter faults.cuda.fake_gpu() first, or "
                           "pass real=True on a machine with CUDA.")
    fake = gpu.device(device)
    spike = _Spike(nbytes, None if duration is None else clk.monotonic() + float(duration), clk)
    with fake.lock:
        fake.spikes.append(spike)
        _ = fake.used  # record the peak
    emit(FAULT_ARMED, "cuda_spike", clock, history=history, family="cuda", device=device,
         bytes=nbytes, real=False)
    emit(FAULT_FIRED, "cuda_spike", clock, history=history, family="cuda", action="spike",
         trigger="always", call=1, device=device, bytes=nbytes)
    try:
        yield
    finally:
        with fake.lock:
            fake.spikes.remove(spike)
        emit(FAULT_DISARMED, "cuda_spike", clock, history=history, family="cuda",
                 device=device)


@contextmanager
def _real_spike(device: int, nbytes: int) -> Iterator[None]:
    torch = torch_module()
    if torch is None or _ACTIVE is not None or not torch.cuda.is_available():
        raise RuntimeError("cuda_spike(real=True) needs torch with a real CUDA device (and no "
                           "fake_gpu() active). Skip the test where CUDA is unavailable.")
    block = torch.empty(nbytes, dtype=torch.uint8, device=f"cuda:{device}")
    block.fill_(1)
    try:
        yield
    finally:
        del block
        torch.cuda.empty_cache()


class OOMBudget:
    """Counts tensor allocations in a ``cuda_oom`` block; ``raised`` says whether it fired."""

    def __init__(self, after_bytes: int | None, nth: int | None) -> None:
        self.after_bytes = after_bytes
        self.nth = nth
        self.allocated = 0
        self.allocations = 0
        self.raised = False

    def count(self, nbytes: int) -> bool:
        """Count one allocation of ``nbytes``; True when it must fail."""
        self.allocations += 1
        fail = (self.nth is not None and self.allocations == self.nth) or (
            self.after_bytes is not None and self.allocated + nbytes > self.after_bytes)
        if not fail:
            self.allocated += nbytes
        return fail


@contextmanager
def cuda_oom(
    *,
    after_bytes: int | str | None = None,
    nth: int | None = None,
    device: int = 0,
    clock: Clock | None = None,
    history: History | None = None,
) -> Iterator[OOMBudget]:
    """Make torch allocations in the block raise ``torch.cuda.OutOfMemoryError``.

    Fails the allocation that would take the block past ``after_bytes``, or the ``nth``
    allocation (each op creating new tensor storage counts once). The error is a real
    instance of torch's class, with CUDA's wording. Needs torch.
    """
    if (after_bytes is None) == (nth is None):
        raise ValueError(f"after_bytes={validate.show(after_bytes)}, "
                         f"nth={validate.show(nth)}: pass exactly one of them.")
    if nth is not None:
        nth = validate.count(nth, "nth", what="an allocation number")
    limit = None if after_bytes is None else parse_bytes(after_bytes, "after_bytes")
    history = validate.history(history)
    torch = torch_module()
    if torch is None:
        raise RuntimeError("cuda_oom needs torch. Install torch or skip the test without it.")
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    budget = OOMBudget(limit, nth)

    class _Mode(TorchDispatchMode):  # type: ignore[no-untyped-call]
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                      if isinstance(t, torch.Tensor)}
            out = func(*args, **(kwargs or {}))
            fresh = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                     for t in tree_flatten(out)[0]
                     if isinstance(t, torch.Tensor)
                     and t.untyped_storage().data_ptr() not in inputs}
            for nbytes in fresh.values():
                if budget.count(nbytes):
                    budget.raised = True
                    emit(FAULT_FIRED, "cuda_oom", clock, history=history, family="cuda",
                         action="raise", trigger="nth" if nth is not None else "after_bytes",
                         call=budget.allocations)
                    left = None if limit is None else max(0, limit - budget.allocated)
                    gpu = _ACTIVE
                    if gpu is None:
                        raise oom_error(nbytes, device, None, left)
                    fake = gpu.device(device)
                    free = fake.free if left is None else min(fake.free, left)
                    raise oom_error(nbytes, device, fake.total, free)
            return out

    emit(FAULT_ARMED, "cuda_oom", clock, history=history, family="cuda", after_bytes=limit,
         nth=nth)
    try:
        with _Mode():  # type: ignore[no-untyped-call]
            yield budget
    finally:
        emit(FAULT_DISARMED, "cuda_oom", clock, history=history, family="cuda",
             fired=budget.raised)
