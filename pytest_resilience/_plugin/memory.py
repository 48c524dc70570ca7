"""Fixtures of the memory family: ``memory_pressure`` and ``fake_gpu`` (issue 4)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from faults.cuda import FakeGPU
    from faults.memory import MemoryPressure


class PressureSetter:
    """The ``memory_pressure`` fixture: ``memory_pressure(85)`` makes psutil report 85% used."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self.fault: MemoryPressure | None = None

    def __call__(self, percent: float) -> MemoryPressure:
        """Report ``percent`` used until the test ends (or the next call)."""
        from faults.memory import memory_pressure

        if self.fault is None:
            self.fault = self._stack.enter_context(memory_pressure(percent))
        else:
            self.fault.set(percent)
        return self.fault


@pytest.fixture
def memory_pressure() -> Iterator[PressureSetter]:
    """Set simulated host memory pressure; undone at teardown."""
    with ExitStack() as stack:
        yield PressureSetter(stack)


@pytest.fixture
def fake_gpu(request: pytest.FixtureRequest) -> Iterator[FakeGPU]:
    """A simulated GPU (1 device, 80 GiB unless ``@pytest.mark.fake_gpu(...)`` says)."""
    from faults.cuda import fake_gpu as install

    marker = request.node.get_closest_marker("fake_gpu")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    with install(**kwargs) as gpu:
        yield gpu


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_gpu`` marker."""
    config.addinivalue_line(
        "markers", "fake_gpu(devices=1, total='80GiB', used=0): configure the fake_gpu fixture."
    )
