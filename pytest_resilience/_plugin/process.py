"""Fixtures of the process and disk families: ``subprocess_faults`` and ``disk_faults``
(issue 21).

Each arms faults on the test's virtual ``clock``, its ``history`` and a seed derived from
the test's seed, and undoes them all at teardown, even when the test failed.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_resilience._plugin.state import derive_seed

if TYPE_CHECKING:
    from faults import Trigger
    from faults.disk import CrashReport, CrashSimulator, CrashState, DiskFault, Opaque
    from faults.subprocess import Command, SubprocessFault
    from pytest_resilience import History, VirtualClock

T = TypeVar("T")


class _Armed:
    """Arms injectors built with the test's clock, history and derived seeds."""

    def __init__(self, family: str, clock: VirtualClock, history: History, seed: int) -> None:
        self.family = family
        self.clock = clock
        self.history = history
        self.seed = seed
        self.faults: list[Any] = []
        self._stack = ExitStack()

    def _common(self) -> dict[str, Any]:
        return {"clock": self.clock, "history": self.history}

    def _seeded(self) -> dict[str, Any]:
        seed = derive_seed(self.seed, f"{self.family}:{len(self.faults)}")
        return {**self._common(), "seed": seed}

    def _arm(self, fault: T) -> T:
        self.faults.append(self._stack.enter_context(fault))  # type: ignore[arg-type]
        return fault

    def close(self) -> int:
        """Undo every fault, last first; returns how many times they fired."""
        self._stack.close()
        return sum(int(getattr(f, "fired", 0)) for f in self.faults)


class SubprocessFaults(_Armed):
    """The ``subprocess_faults`` fixture: ``subprocess_faults.hang("model-cli")`` and
    friends (see ``faults.subprocess``), on the test's clock, history and seed."""

    def not_found(self, command: Command, *, trigger: Trigger | None = None) -> SubprocessFault:
        """``faults.subprocess.not_found`` until the test ends."""
        from faults.subprocess import not_found

        return self._arm(not_found(command, trigger=trigger, **self._seeded()))

    def hang(self, command: Command, *, trigger: Trigger | None = None) -> SubprocessFault:
        """``faults.subprocess.hang`` until the test ends (timeouts pass on the clock)."""
        from faults.subprocess import hang

        return self._arm(hang(command, trigger=trigger, **self._seeded()))

    def exits(self, command: Command, code: int = 1, *, stdout: str | bytes = b"",
              stderr: str | bytes = b"", trigger: Trigger | None = None) -> SubprocessFault:
        """``faults.subprocess.exits`` until the test ends."""
        from faults.subprocess import exits

        return self._arm(exits(command, code, stdout=stdout, stderr=stderr, trigger=trigger,
                               **self._seeded()))

    def killed(self, command: Command, signal: int = signal.SIGKILL, *,
               stdout: str | bytes = b"", stderr: str | bytes = b"",
               trigger: Trigger | None = None) -> SubprocessFault:
        """``faults.subprocess.killed`` until the test ends."""
        from faults.subprocess import killed

        return self._arm(killed(command, signal, stdout=stdout, stderr=stderr,
                                trigger=trigger, **self._seeded()))

    def slow_start(self, command: Command, seconds: float, *,
                   trigger: Trigger | None = None) -> SubprocessFault:
        """``faults.subprocess.slow_start`` until the test ends (waits on the clock)."""
        from faults.subprocess import slow_start

        return self._arm(slow_start(command, seconds, trigger=trigger, **self._seeded()))


class DiskFaults(_Armed):
    """The ``disk_faults`` fixture: ``disk_faults.no_space(root, after=4096)`` and friends
    (see ``faults.disk``) for a directory the test names, on its clock and history."""

    def no_space(self, root: Path | str, *, after: int = 0,
                 on: str | Iterable[str] = "write") -> DiskFault:
        """``faults.disk.no_space`` until the test ends."""
        from faults.disk import no_space

        return self._arm(no_space(root, after=after, on=on, **self._common()))

    def io_error(self, root: Path | str, *, on: str | Iterable[str] = "write",
                 trigger: Trigger | None = None) -> DiskFault:
        """``faults.disk.io_error`` until the test ends."""
        from faults.disk import io_error

        return self._arm(io_error(root, on=on, trigger=trigger, **self._seeded()))

    def read_only(self, root: Path | str, *, on: str | Iterable[str] | None = None,
                  trigger: Trigger | None = None) -> DiskFault:
        """``faults.disk.read_only`` until the test ends (every operation by default)."""
        from faults.disk import OPS, read_only

        return self._arm(read_only(root, on=OPS if on is None else on, trigger=trigger,
                                   **self._seeded()))

    def latency(self, root: Path | str, seconds: float, *,
                on: str | Iterable[str] = ("write", "fsync"),
                trigger: Trigger | None = None) -> DiskFault:
        """``faults.disk.latency`` until the test ends (waits on the clock)."""
        from faults.disk import latency

        return self._arm(latency(root, seconds, on=on, trigger=trigger, **self._seeded()))

    def crash_simulator(self, root: Path | str, *, opaque: Opaque = "error") -> CrashSimulator:
        """``faults.disk.crash_simulator`` recording until ``crash()`` or the test's end."""
        from faults.disk import crash_simulator

        return self._arm(crash_simulator(root, opaque=opaque, **self._common()))

    def explore(self, root: Path | str, workload: Callable[[], Any], *,
                check: Callable[[CrashState], Any],
                recover: Callable[[Path], Any] | None = None, torn: bool = False,
                observe: Callable[[], Any] | None = None,
                opaque: Opaque = "error") -> CrashReport:
        """``faults.disk.explore`` with the test's clock and history."""
        from faults.disk import explore

        return explore(root, workload, check=check, recover=recover, torn=torn,
                       observe=observe, opaque=opaque, **self._common())


def _fixture(armed: _Armed) -> Iterator[Any]:
    try:
        yield armed
    finally:
        armed.close()


@pytest.fixture
def subprocess_faults(clock: VirtualClock, history: History,
                      resilience_seed: int) -> Iterator[SubprocessFaults]:
    """Make commands missing, hang, fail, start slowly or die, for this test only."""
    yield from _fixture(SubprocessFaults("subprocess", clock, history, resilience_seed))


@pytest.fixture
def disk_faults(clock: VirtualClock, history: History,
                resilience_seed: int) -> Iterator[DiskFaults]:
    """Fill up, fail, slow down or crash the disk under a directory, for this test only."""
    yield from _fixture(DiskFaults("disk", clock, history, resilience_seed))
