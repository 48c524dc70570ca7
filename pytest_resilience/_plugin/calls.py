"""The call phase of a harness test: checks run after the body, and the faults active
when it failed.

Registered by the first test that asks for a test history, so tests that never use
the harness pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import pytest

from pytest_resilience._plugin.state import item_record, register_once

if TYPE_CHECKING:
    from pytest_resilience import History

__all__ = ["after_call", "test_history", "watch_calls"]

_CALL_WATCH = "resilience-call-watch"
_AFTER_CALL = pytest.StashKey[list[Callable[[bool], None]]]()
_HISTORY = pytest.StashKey["History"]()


def watch_calls(item: pytest.Item, history: History) -> None:
    """Make ``history`` ``item``'s test history and watch its call phase."""
    from pytest_resilience._plugin.per_test import use_harness

    item.stash[_HISTORY] = history
    register_once(item.config, _CALL_WATCH, _CallWatch)
    use_harness(item.config)


def test_history(item: pytest.Item) -> History | None:
    """``item``'s test history, when it has one."""
    return item.stash.get(_HISTORY, None)


test_history.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def after_call(item: pytest.Item, check: Callable[[bool], None]) -> None:
    """Call ``check(passed)`` right after ``item``'s body (``passed``: it did not raise);
    a raise from ``check`` fails the test."""
    item.stash.setdefault(_AFTER_CALL, []).append(check)


class _CallWatch:
    """After a harness test's body: run its checks (SLA budgets), and when the body or a
    check raised, note the faults active at the failure in the test's record."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        __tracebackhide__ = True
        try:
            try:
                result = yield
            except BaseException:
                for check in item.stash.get(_AFTER_CALL, []):
                    check(False)
                raise
            for check in item.stash.get(_AFTER_CALL, []):
                check(True)
        except BaseException:
            events = test_history(item)
            if events is not None:
                from pytest_resilience._plugin.records import faults_at_failure

                item_record(item)["failure_faults"] = faults_at_failure(events)
            raise
        finally:
            item.stash[_AFTER_CALL] = []
        return result
