"""Progress of a long chaos run on pytest's terminal: plans done of the planned number,
failures so far, plans per second and the time left.

``ChaosProgress`` is the callback ``run_chaos(on_plan=...)`` calls after each plan. It
writes through pytest's terminal reporter (one line, rewritten in place, at most
``interval`` seconds apart) when ``--resilience-progress`` says so: ``auto`` (the
default) shows it on a terminal and not under ``-q``; ``always``/``never`` decide
outright. Under pytest-xdist the workers have no terminal, so it stays silent there.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_resilience import Clock

__all__ = ["PROGRESS_OPTION", "ChaosProgress", "chaos_progress", "progress_wanted"]

PROGRESS_OPTION = "--resilience-progress"
CHOICES = ("auto", "always", "never")


def progress_wanted(config: pytest.Config) -> bool:
    """Whether chaos runs show their progress in this session."""
    choice = config.getoption("resilience_progress", "auto")
    if choice == "never" or hasattr(config, "workerinput"):
        return False
    if choice == "always":
        return True
    return config.get_verbosity() >= 0 and sys.stdout.isatty()


class ChaosProgress:
    """Writes ``chaos <test>: 40/100 plans · 1 failing · 85 plans/s · ~1s left``."""

    def __init__(self, reporter: pytest.TerminalReporter, nodeid: str, total: int, *,
                 clock: Clock | None = None, interval: float = 0.25) -> None:
        from pytest_resilience import SystemClock

        self.reporter = reporter
        # The body runs under output capture: write past it, as pytest's live logs do.
        self._capture = reporter.config.pluginmanager.get_plugin("capturemanager")
        self.nodeid = nodeid
        self.name = nodeid.rsplit("::", 1)[-1]
        self.total = total
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.interval = interval
        self.started = self.clock.monotonic()
        self.done = 0
        self.failures = 0
        self._shown = -interval
        self._written = False

    def line(self) -> str:
        """The current progress as one line."""
        elapsed = self.clock.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"chaos {self.name}: {self.done}/{self.total} plans",
                 f"{self.failures} failing"]
        if rate:
            parts.append(f"{rate:.3g} plans/s")
        if self.done > self.total or self.failures:
            parts.append("shrinking the failure" if self.failures else "replaying saved plans")
        elif rate and self.done < self.total:
            parts.append(f"~{(self.total - self.done) / rate:.0f}s left")
        return " · ".join(parts)

    def __call__(self, done: int, failures: int) -> None:
        """After each plan: ``done`` plans run so far, ``failures`` of them failing."""
        self.done, self.failures = done, failures
        now = self.clock.monotonic()
        if now - self._shown < self.interval:
            return
        self._shown = now
        with self._uncaptured():
            if not self._written:
                self.reporter.ensure_newline()
                self._written = True
            self.reporter.rewrite(self.line(), erase=True)

    def _uncaptured(self) -> AbstractContextManager[object]:
        if self._capture is None:
            return nullcontext()
        disabled: AbstractContextManager[object] = self._capture.global_and_fixture_disabled()
        return disabled

    def close(self) -> None:
        """Write the final line (only if a line was written), then the test file's name
        again, so pytest's result letters carry on after it."""
        if not self._written:
            return
        elapsed = self.clock.monotonic() - self.started
        with self._uncaptured():
            self.reporter.rewrite(f"chaos {self.name}: {self.done} plans in {elapsed:.3g}s, "
                                  f"{self.failures} failing", erase=True)
            self.reporter.currentfspath = None
            if self.reporter.verbosity <= 0:
                self.reporter.write_fspath_result(self.nodeid, "")
            else:
                self.reporter.write("\n")


def chaos_progress(item: pytest.Item, total: int) -> ChaosProgress | None:
    """A progress line for ``item``'s chaos run of ``total`` plans, if wanted."""
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    if not isinstance(reporter, pytest.TerminalReporter) or not progress_wanted(item.config):
        return None
    return ChaosProgress(reporter, item.nodeid, total)
