"""Per-session plugin state, kept in ``config.stash``.

Family modules count what they did with ``state.count(...)``; the terminal summary and
the reports read the counters, which workers send to the xdist controller.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "PLAN_RESETS",
    "RECORD_KEY",
    "STATE",
    "SessionState",
    "derive_seed",
    "get_state",
    "request_marked_fixture",
    "reset_after_each_plan",
]

#: The ``user_properties`` key under which each test's resilience record travels.
RECORD_KEY = "resilience"


@dataclass
class SessionState:
    """The session seed, the report directory, counters and per-test records."""

    seed: int
    seed_source: str
    report_dir: Path | None = None
    counters: Counter[str] = field(default_factory=Counter)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    lost_workers: list[str] = field(default_factory=list)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (shown in the terminal summary)."""
        self.counters[name] += n


STATE = pytest.StashKey[SessionState]()
#: Per chaos test, for each fixture the body may change: a function called before the
#: first plan that returns the reset to call after each plan.
PLAN_RESETS = pytest.StashKey[list[Callable[[], Callable[[], None]]]]()


def get_state(config: pytest.Config) -> SessionState:
    """The session state; raises a clear error if the plugin was not configured."""
    try:
        return config.stash[STATE]
    except KeyError:
        raise RuntimeError(
            "pytest-resilience is not configured in this session. Load it with "
            "`-p resilience`."
        ) from None


def derive_seed(session_seed: int, nodeid: str) -> int:
    """A test's seed: derived from the session seed and its node id (order-independent)."""
    digest = hashlib.sha256(f"{session_seed}:{nodeid}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def request_marked_fixture(items: list[pytest.Item], name: str) -> None:
    """Make every test marked ``@pytest.mark.<name>`` request the fixture ``name``."""
    for item in items:
        if not isinstance(item, pytest.Function) or item.get_closest_marker(name) is None:
            continue
        if name not in item.fixturenames:
            item.fixturenames.append(name)


def reset_after_each_plan(node: pytest.Item, start: Callable[[], Callable[[], None]]) -> None:
    """In a ``chaos`` test, call ``start()`` before the first plan and the reset it returns
    after each plan, so a fixture the body may change puts itself back and every plan
    starts from the same state."""
    if node.get_closest_marker("chaos") is not None:
        node.stash.setdefault(PLAN_RESETS, []).append(start)
