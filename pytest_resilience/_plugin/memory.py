"""Fixtures of the memory family: ``memory_pressure`` and ``fake_gpu`` (issue 4)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.state import test_clock

if TYPE_CHECKING:
    from faults.cuda import FakeGPU
    from faults.memory import MemoryPressure
    from pytest_resilience import Clock, History


class PressureSetter:
    """The ``memory_pressure`` fixture: ``memory_pressure(85)`` makes psutil report 85% used."""

    def __init__(self, stack: ExitStack, *, clock: Clock, history: History) -> None:
        self._stack = stack
        self._clock = clock
        self._history = history
        self.fault: MemoryPressure | None = None

    def __call__(self, percent: float) -> MemoryPressure:
        """Report ``percent`` used until the test ends (or the next call)."""
        from faults.memory import memory_pressure

        if self.fault is None:
            self.fault = self._stack.enter_context(
                memory_pressure(percent, clock=self._clock, history=self._history))
        else:
            self.fault.set(percent)
        return self.fault


@pytest.fixture
def memory_pressure(request: pytest.FixtureRequest,
                    history: History) -> Iterator[PressureSetter]:
    """Set simulated host memory pressure, on the test's clock and history; undone at
    teardown."""
    with ExitStack() as stack:
        yield PressureSetter(stack, clock=test_clock(request), history=history)


_FAKE_GPU_KWARGS = ("devices", "total", "used", "name")


@pytest.fixture
def fake_gpu(request: pytest.FixtureRequest, history: History) -> Iterator[FakeGPU]:
    """A simulated GPU (1 device, 80 GiB unless ``@pytest.mark.fake_gpu(...)`` says), on
    the test's clock and history."""
    from faults.cuda import fake_gpu as install

    marker = request.node.get_closest_marker("fake_gpu")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    unknown = sorted(set(kwargs) - set(_FAKE_GPU_KWARGS))
    if unknown or (marker is not None and marker.args):
        given = [*map(repr, marker.args if marker is not None else ()),
                 *(f"{k}={kwargs[k]!r}" for k in unknown)]
        pytest.fail(
            f"@pytest.mark.fake_gpu got {', '.join(given)}. It takes keywords only: "
            f"{', '.join(_FAKE_GPU_KWARGS)} (e.g. fake_gpu(devices=2, total='24GiB')).",
            pytrace=False,
        )
    with install(**kwargs, clock=test_clock(request), history=history) as gpu:
        yield gpu


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_gpu`` marker."""
    config.addinivalue_line(
        "markers", "fake_gpu(devices=1, total='80GiB', used=0): configure the fake_gpu fixture."
    )
