"""Events rendered as log records; JSON and human formatters."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any, TypedDict

import pytest

from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import Event, emit
from pytest_resilience.kinds import declare
from pytest_resilience.observability._context import correlation
from pytest_resilience.observability._logs import (
    HumanFormatter,
    JsonFormatter,
    event_level,
    log_events,
)
from pytest_resilience.observability._redact import REDACTED


class _LoginAttrs(TypedDict):
    """A user's own event kind, with whatever attributes it carries."""

    status: str


APP_LOGIN = declare("app.login", _LoginAttrs, source="service", doc="a login", open=True)


def test_each_event_is_one_record_with_its_attributes_and_context(captured: Any) -> None:
    clock = VirtualClock(start=5.0)
    with log_events(), correlation("checkout", correlation_id="c-1", user="u7"):
        emit("retry.attempt", "fetch", clock, attempt=2, outcome="error", error="Timeout()",
             elapsed=0.0)
        emit("breaker.transition", "payments", clock, **{"from": "closed", "to": "open"})
    first, second = captured.records()
    assert first["logger"] == "pytest_resilience.events.retry"
    assert first["level"] == "INFO"
    assert first["message"] == (
        "retry.attempt fetch attempt=2 outcome=error error=Timeout() elapsed=0.0")
    assert first["event"]["kind"] == "retry.attempt"
    assert first["event"]["attrs"] == {"attempt": 2, "outcome": "error", "error": "Timeout()",
                                       "elapsed": 0.0}
    assert first["event"]["time"] == 5.0
    assert first["context"] == {"correlation_id": "c-1", "operation": "checkout", "user": "u7"}
    assert second["logger"] == "pytest_resilience.events.breaker"
    assert second["level"] == "WARNING"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", second["ts"])


def test_closing_the_bridge_stops_logging(captured: Any) -> None:
    bridge = log_events()
    emit("cache.evict", "models", key="a", bytes=1, cause="lru")
    bridge.close()
    bridge.close()
    emit("cache.evict", "models", key="b", bytes=1, cause="lru")
    assert [r["event"]["attrs"]["key"] for r in captured.records()] == ["a"]


def test_disabled_level_builds_no_record(captured: Any) -> None:
    logging.getLogger("pytest_resilience.events").setLevel(logging.WARNING)
    calls = []

    class CountingRedactor:
        def __call__(self, data: object) -> object:
            calls.append(data)
            return data

    with log_events(redactor=CountingRedactor()):  # type: ignore[arg-type]
        emit("cache.hit", "models", key="a", bytes=1)  # DEBUG: dropped before any work
        emit("ratelimit.rejected", "api", tokens=1, waited=0.0)  # WARNING: logged
    assert [r["event"]["kind"] for r in captured.records()] == ["ratelimit.rejected"]
    assert len(calls) == 1


def test_secret_attributes_are_redacted_in_message_and_fields(captured: Any) -> None:
    with log_events(), correlation(correlation_id="c", api_key="k-123"):
        emit(APP_LOGIN, "db", status="healthy", password="hunter2", tokens=3)
    (record,) = captured.records()
    line = json.dumps(record)
    assert "hunter2" not in line
    assert "k-123" not in line
    assert record["event"]["attrs"] == {"status": "healthy", "password": REDACTED, "tokens": 3}
    assert record["context"]["api_key"] == REDACTED


@pytest.mark.parametrize(("kind", "attrs", "level"), [
    ("retry.attempt", {"outcome": "ok"}, logging.DEBUG),
    ("retry.attempt", {"outcome": "error"}, logging.INFO),
    ("retry.giveup", {}, logging.WARNING),
    ("breaker.transition", {"to": "half_open"}, logging.INFO),
    ("breaker.transition", {"to": "open"}, logging.WARNING),
    ("memory.pressure", {"level": "normal"}, logging.INFO),
    ("memory.pressure", {"level": "critical"}, logging.WARNING),
    ("health.check", {"status": "timeout"}, logging.WARNING),
    ("trace.operation", {"outcome": "error"}, logging.WARNING),
    ("cache.hit", {}, logging.DEBUG),
    ("chroma.commit", {}, logging.INFO),
])
def test_event_levels(kind: str, attrs: dict[str, str], level: int) -> None:
    assert event_level(Event(0, 0.0, kind, "s", attrs)) == level


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
    record.created = 1_704_067_200.25
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_on_plain_records_shows_context_extra_and_traceback() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        import sys
        exc_info = sys.exc_info()
    record = _record(order=17, secret="s", obj=object())
    record.exc_info = exc_info
    with correlation("pay", correlation_id="c-9"):
        data = json.loads(JsonFormatter().format(record))
    assert data["ts"] == "2024-01-01T00:00:00.250Z"
    assert data["message"] == "failed x"
    assert data["context"] == {"correlation_id": "c-9", "operation": "pay"}
    assert data["fields"]["order"] == 17
    assert data["fields"]["secret"] == REDACTED
    assert data["fields"]["obj"].startswith("<object object")
    assert data["exc"].endswith("ValueError: bad")


def test_human_formatter_line() -> None:
    with correlation("pay", correlation_id="c-9"):
        line = HumanFormatter().format(_record(order=17, note="two words"))
    assert line == (
        "2024-01-01T00:00:00.250Z ERROR   app: failed x "
        "[operation=pay correlation_id=c-9 order=17 note='two words']"
    )


def test_human_formatter_without_context_has_no_brackets() -> None:
    assert HumanFormatter().format(_record()).endswith("app: failed x")


def test_bridge_feeds_a_handler_with_human_lines() -> None:
    logger = logging.getLogger("myapp.events.cache")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(HumanFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with log_events(logger="myapp.events"):
            emit("cache.evict", "models", key="bert", bytes=1024, cause="pressure")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert stream.getvalue().split(": ", 1)[1] == (
        "cache.evict models key=bert bytes=1024 cause=pressure\n"
    )


def test_logger_name_is_validated() -> None:
    with pytest.raises(TypeError) as info:
        log_events(logger="")
    assert str(info.value) == "logger='' is not a logger name. Pass e.g. 'myapp.events'."
