"""Cost of an event whose log level is disabled, next to a disabled stdlib logger call."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pytest_resilience._events import Event, emit
from pytest_resilience.observability._logs import EVENT_LOGGER, log_events


@pytest.fixture
def quiet_bridge() -> Iterator[None]:
    """The bridge installed with the event loggers at WARNING (INFO events disabled)."""
    logger = logging.getLogger(EVENT_LOGGER)
    logger.setLevel(logging.WARNING)
    with log_events():
        yield
    logger.setLevel(logging.NOTSET)


@pytest.mark.benchmark(group="log-at-disabled-level")
def test_bridge_listener_disabled_level(benchmark, quiet_bridge: None) -> None:
    """The listener alone, on a built event at a disabled level."""
    bridge = log_events()
    event = Event(0, 0.0, "chroma.commit", "docs", {"ops": 3})
    try:
        benchmark(bridge, event)
    finally:
        bridge.close()


@pytest.mark.benchmark(group="log-at-disabled-level")
def test_emit_with_bridge_disabled_level(benchmark, quiet_bridge: None) -> None:
    """``emit`` end to end (event built for the listener, then dropped by level)."""
    benchmark(emit, "chroma.commit", "docs", ops=3)


@pytest.mark.benchmark(group="log-at-disabled-level")
def test_stdlib_logger_disabled_level(benchmark) -> None:
    """Peer: ``logger.info`` on a stdlib logger set to WARNING."""
    logger = logging.getLogger("bench.stdlib")
    logger.setLevel(logging.WARNING)
    benchmark(logger.info, "chroma.commit %s ops=%d", "docs", 3)


@pytest.mark.benchmark(group="log-at-disabled-level")
def test_emit_nobody_listening(benchmark) -> None:
    """Baseline: ``emit`` with no listener and no history."""
    benchmark(emit, "chroma.commit", "docs", ops=3)
