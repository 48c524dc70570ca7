"""faults.memory / faults.cuda: oom_at on (obj, "attr"), cuda_oom budgets, error texts."""

from __future__ import annotations

import types

import psutil
import pytest

import faults
from faults.cuda import cuda_oom, cuda_spike, fake_gpu
from faults.memory import memory_pressure, oom_at, real_oom
from pytest_resilience._events import recording


class Loader:
    def load(self, name: str) -> str:
        return f"model:{name}"


def test_oom_at_object_attribute_raises_then_restores_class_method() -> None:
    loader = Loader()
    with recording() as history, oom_at((Loader, "load"), trigger=faults.Trigger.nth(2),
                                        message="no room for weights") as plan:
        assert loader.load("a") == "model:a"
        with pytest.raises(MemoryError) as info:
            loader.load("b")
        assert str(info.value) == "no room for weights"
        assert loader.load("c") == "model:c"
    assert plan.calls("oom:Loader.load") == 3
    assert plan.fired("oom:Loader.load") == 1
    assert Loader.__dict__["load"] is Loader.load
    assert loader.load("d") == "model:d"
    fired = history.select("fault.fired")
    assert len(fired) == 1
    assert fired[0].attrs["action"] == "raise(MemoryError('no room for weights'))"


def test_oom_at_module_function_and_inherited_attribute_are_restored() -> None:
    module = types.SimpleNamespace(__name__="weights", read=lambda: b"w")
    with oom_at((module, "read")), pytest.raises(MemoryError, match=r"^simulated out of memory$"):
        module.read()
    assert module.read() == b"w"

    loader = Loader()  # the instance does not own "load": it is deleted again at exit
    with oom_at((loader, "load")):
        with pytest.raises(MemoryError):
            loader.load("x")
        assert Loader().load("y") == "model:y"  # other instances untouched
    assert "load" not in vars(loader)
    assert loader.load("x") == "model:x"


def test_oom_at_restores_even_when_the_block_fails() -> None:
    original = Loader.load
    with pytest.raises(KeyError), oom_at((Loader, "load")):
        raise KeyError("boom")
    assert Loader.load is original


def test_oom_at_bad_targets() -> None:
    with pytest.raises(TypeError) as shape, oom_at((Loader,)):  # type: ignore[arg-type]
        pass
    assert str(shape.value) == (
        f"target={(Loader,)!r} is not a failpoint name or (object, 'attribute') pair. "
        "Pass e.g. 'model.load' or (torch, 'load')."
    )
    holder = types.SimpleNamespace(size=3)
    with pytest.raises(TypeError) as not_callable, oom_at((holder, "size")):
        pass
    assert str(not_callable.value) == (
        "target=(namespace(size=3), 'size') names 3, which is not callable. "
        "Pass a function or method attribute.")
    assert holder.size == 3


def test_cuda_oom_after_bytes_without_gpu_reports_the_budget() -> None:
    torch = pytest.importorskip("torch", reason="cuda_oom needs torch")
    with cuda_oom(after_bytes="1.5MiB") as budget:
        kept = torch.empty(2**18)  # 1 MiB of float32
        with pytest.raises(torch.cuda.OutOfMemoryError) as info:
            torch.empty(2**18)
        small = torch.empty(2**16)  # 256 KiB still fits
    assert str(info.value) == (
        "CUDA out of memory. Tried to allocate 1.00 MiB. GPU 0 has 0.50 MiB left of the "
        "injected budget. (simulated by faults.cuda)")
    assert "0.00 GiB" not in str(info.value)
    assert (budget.allocated, budget.allocations, budget.raised) == (
        2**20 + 2**18, 3, True)
    assert kept.numel() + small.numel() == 2**18 + 2**16
    torch.empty(2**20)  # the block is over: no budget any more


def test_cuda_oom_nth_without_gpu_omits_capacity() -> None:
    torch = pytest.importorskip("torch", reason="cuda_oom needs torch")
    with cuda_oom(nth=1), pytest.raises(torch.cuda.OutOfMemoryError) as info:
        torch.empty(2**18)
    assert str(info.value) == (
        "CUDA out of memory. Tried to allocate 1.00 MiB. (simulated by faults.cuda)")


def test_cuda_oom_on_fake_gpu_reports_device_capacity() -> None:
    torch = pytest.importorskip("torch", reason="cuda_oom needs torch")
    with (fake_gpu(total="1GiB", used="256MiB"), cuda_oom(nth=1),
          pytest.raises(torch.cuda.OutOfMemoryError) as info):
        torch.empty(2**18)
    assert str(info.value) == (
        "CUDA out of memory. Tried to allocate 1.00 MiB. GPU 0 has a total capacity of "
        "1.00 GiB of which 768.00 MiB is free. (simulated by faults.cuda)")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "after_bytes=None, nth=None: pass exactly one of them."),
        ({"after_bytes": 1, "nth": 1}, "after_bytes=1, nth=1: pass exactly one of them."),
        ({"nth": 0}, "nth=0 is not an allocation number. Pass an integer >= 1."),
        ({"after_bytes": "lots"}, "after_bytes='lots' is not a size. Pass bytes as an int "
                                  ">= 0 or a string such as '80GiB', '512MiB' or '4GB'."),
    ],
)
def test_cuda_oom_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info, cuda_oom(**kwargs):  # type: ignore[arg-type]
        pass
    assert str(info.value) == message


def test_gpu_and_host_fault_error_texts() -> None:
    with pytest.raises(RuntimeError) as no_gpu, cuda_spike(0, "1GiB"):
        pass
    assert str(no_gpu.value) == (
        "cuda_spike needs a GPU: enter faults.cuda.fake_gpu() first, or pass real=True on "
        "a machine with CUDA.")
    with pytest.raises(ValueError) as duration, cuda_spike(0, "1GiB", duration=0):
        pass
    assert str(duration.value) == (
        "duration=0 is not a positive duration. Pass seconds > 0 or None (until the block "
        "ends).")
    with pytest.raises(ValueError) as devices, fake_gpu(devices=0):
        pass
    assert str(devices.value) == (
        "devices=0 is not a device count. Pass an integer >= 1 and <= 1024.")
    with pytest.raises(ValueError) as used, fake_gpu(total="1GiB", used="2GiB"):
        pass
    assert str(used.value) == (
        "total='1GiB', used='2GiB': need 0 < used <= total. Pass a positive total and a "
        "smaller used.")
    with fake_gpu(), pytest.raises(RuntimeError) as nested, fake_gpu():
        pass
    assert str(nested.value) == (
        "A fake GPU is already installed. Nest cuda_spike/cuda_oom inside it instead of a "
        "second fake_gpu().")
    with pytest.raises(ValueError) as percent, memory_pressure(101):
        pass
    assert str(percent.value) == (
        "percent=101 is not a percentage. Pass a number from 0 to 100 (the share of memory "
        "reported used).")
    assert psutil.PROCFS_PATH == "/proc"
    with pytest.raises(ValueError) as limit:
        real_oom(0, print)
    assert str(limit.value) == (
        "limit_bytes=0 is not a positive integer. Pass the bytes the child may allocate "
        "beyond its size at start.")
