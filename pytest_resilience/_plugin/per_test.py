"""Per-test hooks that only the harness needs, registered the first time it is used.

A session whose tests never touch the harness runs no per-test hook of this plugin.
The teardown check (attach the test's record; disarm any failpoint that leaked out of
the test and fail its teardown) is registered by the first test that uses a harness
fixture, or by the first failpoint armed (the fault registry calls
``pytest_resilience.arming.armed()``). The record collector (one record per test, for
``report.json`` and the terminal summary) is registered by the first harness test, or at
configure when every test must be recorded: ``--resilience-report`` (``report.json``
lists every test) and the xdist controller (records arrive from the workers). A
session's records therefore hold every test with a report, and the harness tests
otherwise (the summary only counts those).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator

import pytest

from pytest_resilience._plugin.state import (
    RECORD_KEY,
    get_state,
    register_once,
    take_item_record,
)

__all__ = ["collect_records", "use_harness", "watch_arming"]

TEARDOWN = "resilience-teardown"
COLLECTOR = "resilience-records"


def use_harness(config: pytest.Config) -> None:
    """A test uses the harness: from now on, check each test's teardown and collect its
    record (the collector runs where reports are logged: never on an xdist worker)."""
    register_once(config, TEARDOWN, TeardownCheck)
    if not hasattr(config, "workerinput"):
        collect_records(config)


def collect_records(config: pytest.Config) -> None:
    """Merge every later test's reports into the session's records."""
    from pytest_resilience._plugin.records import RecordCollector

    register_once(config, COLLECTOR, lambda: RecordCollector(get_state(config)))


def watch_arming(config: pytest.Config) -> Callable[[], None] | None:
    """Register the teardown check when a failpoint is first armed; returns the hook this
    replaces (a session being configured inside another one), to put back at the end."""
    from pytest_resilience import arming

    return arming.set_hook(lambda: register_once(config, TEARDOWN, TeardownCheck))


class TeardownCheck:
    """After each test's teardown: attach its record, and stop any leaked failpoint."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        """Attach the test's record, and stop any fault that leaked out of the test."""
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:  # another fixture's teardown failed: report both
            error = exc
        record = take_item_record(item)
        if record:
            item.user_properties.append((RECORD_KEY, record))
        loaded = sys.modules.get("faults")  # not loaded yet: no failpoint can be armed
        leaked = loaded.disarm_all() if loaded is not None else []
        if leaked:
            message = (
                f"failpoints {leaked} were still armed after the test; they have been "
                "disarmed. Arm faults with `with faults.inject(...)`, the `faults` fixture, "
                "or call .stop() on the activation."
            )
            if error is not None:
                message += f" The teardown also failed: {type(error).__name__}: {error}"
            raise pytest.fail.Exception(message, pytrace=False) from error
        if error is not None:
            raise error
